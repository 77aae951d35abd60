namespace Btrfs.Tests
{
    using System.Linq;
    using System.Runtime.CompilerServices;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;
    using Xunit;

    /// <summary>Struct sizes, field offsets and request numbers as kernel-and-anchors.md 3.1–3.2 and the uapi headers give them.</summary>
    public class InteropLayoutTests
    {
        [Fact]
        public void FiemapHeaderIs32BytesWithUapiOffsets()
        {
            Assert.Equal(32, Unsafe.SizeOf<Libc.Fiemap>());
            Assert.Equal(0, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.Start)));
            Assert.Equal(8, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.Length)));
            Assert.Equal(16, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.Flags)));
            Assert.Equal(20, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.MappedExtents)));
            Assert.Equal(24, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.ExtentCount)));
            Assert.Equal(28, (int)Marshal.OffsetOf<Libc.Fiemap>(nameof(Libc.Fiemap.Reserved)));
        }

        [Fact]
        public void FiemapExtentIs56BytesWithUapiOffsets()
        {
            Assert.Equal(56, Unsafe.SizeOf<Libc.FiemapExtent>());
            Assert.Equal(0, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Logical)));
            Assert.Equal(8, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Physical)));
            Assert.Equal(16, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Length)));
            Assert.Equal(24, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Reserved64a)));
            Assert.Equal(40, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Flags)));
            Assert.Equal(44, (int)Marshal.OffsetOf<Libc.FiemapExtent>(nameof(Libc.FiemapExtent.Reserved0)));
        }

        [Fact]
        public void StatxIs256BytesWithUapiOffsets()
        {
            Assert.Equal(256, Unsafe.SizeOf<Libc.StatX>());
            Assert.Equal(28, (int)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.Mode)));
            Assert.Equal(40, (int)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.Size)));
        }

        [Fact]
        public void StatfsIs120BytesWithTypeFirst()
        {
            Assert.Equal(120, Unsafe.SizeOf<Libc.StatFs>());
            Assert.Equal(0, (int)Marshal.OffsetOf<Libc.StatFs>(nameof(Libc.StatFs.Type)));
        }

        [Fact]
        public void FiemapRequestNumberMatchesIocEncoding()
        {
            // _IOWR('f', 11, struct fiemap): dir 3 << 30 | size 32 << 16 | 'f' << 8 | 11
            uint encoded = Ioc(3, 'f', 11, Unsafe.SizeOf<Libc.Fiemap>());
            Assert.Equal(0xC020660Bu, encoded);
            Assert.True(encoded == Libc.FS_IOC_FIEMAP, $"FS_IOC_FIEMAP is 0x{Libc.FS_IOC_FIEMAP:X8}, the encoding gives 0x{encoded:X8}");
        }

        [Fact]
        public void ExtentFlagsEnumMatchesFiemapBits()
        {
            Assert.Equal(Libc.FIEMAP_EXTENT_LAST, (uint)Core.ExtentFlags.Last);
            Assert.Equal(Libc.FIEMAP_EXTENT_UNKNOWN, (uint)Core.ExtentFlags.Unknown);
            Assert.Equal(Libc.FIEMAP_EXTENT_DELALLOC, (uint)Core.ExtentFlags.Delalloc);
            Assert.Equal(Libc.FIEMAP_EXTENT_ENCODED, (uint)Core.ExtentFlags.Encoded);
            Assert.Equal(Libc.FIEMAP_EXTENT_DATA_ENCRYPTED, (uint)Core.ExtentFlags.DataEncrypted);
            Assert.Equal(Libc.FIEMAP_EXTENT_NOT_ALIGNED, (uint)Core.ExtentFlags.NotAligned);
            Assert.Equal(Libc.FIEMAP_EXTENT_DATA_INLINE, (uint)Core.ExtentFlags.DataInline);
            Assert.Equal(Libc.FIEMAP_EXTENT_DATA_TAIL, (uint)Core.ExtentFlags.DataTail);
            Assert.Equal(Libc.FIEMAP_EXTENT_UNWRITTEN, (uint)Core.ExtentFlags.Unwritten);
            Assert.Equal(Libc.FIEMAP_EXTENT_MERGED, (uint)Core.ExtentFlags.Merged);
            Assert.Equal(Libc.FIEMAP_EXTENT_SHARED, (uint)Core.ExtentFlags.Shared);
            Assert.Equal(0x3F8Fu, (uint)System.Enum.GetValues<Core.ExtentFlags>().Aggregate(0u, (a, f) => a | (uint)f));
        }

        [Fact]
        public void AFailedOpenIsAnInvalidHandleWithErrno()
        {
            // open(2) returns a 32-bit -1; it must not become a "valid" 0xFFFFFFFF handle.
            using SafeFileDescriptor fd = Libc.Open("/nonexistent/" + System.Guid.NewGuid(), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            Assert.True(fd.IsInvalid);
            Assert.Equal(Libc.ENOENT, Marshal.GetLastPInvokeError());
        }

        [Fact]
        public void ASuccessfulOpenIsAValidHandle()
        {
            using SafeFileDescriptor fd = Libc.Open("/proc/self/status", Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            Assert.False(fd.IsInvalid);
            Assert.True(fd.Fd >= 0);
        }

        private static uint Ioc(uint dir, char type, uint nr, int size) => (dir << 30) | ((uint)size << 16) | ((uint)type << 8) | nr;
    }
}
