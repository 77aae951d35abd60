namespace Btrfs.Tests
{
    using System.Linq;
    using System.Runtime.CompilerServices;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;
    using Btrfs.Kernel;
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

        /// <summary>
        /// xfs and ext4 structures are not in the kernel's uapi headers installed here (xfs_fs.h comes
        /// with xfslibs-dev, ext4's move_extent is private): their layouts as fs/xfs/libxfs/xfs_fs.h and
        /// fs/ext4/ext4.h give them, and each request number from its _IOC encoding.
        /// </summary>
        [Fact]
        public void XfsAndExt4ExchangeStructuresAndRequestNumbersMatchTheirEncoding()
        {
            Assert.Equal(136, Unsafe.SizeOf<Libc.XfsBstat>());
            Assert.Equal(16, Unsafe.SizeOf<Libc.XfsBsTime>());
            Assert.Equal(56, (int)Marshal.OffsetOf<Libc.XfsBstat>(nameof(Libc.XfsBstat.Mtime)));
            Assert.Equal(72, (int)Marshal.OffsetOf<Libc.XfsBstat>(nameof(Libc.XfsBstat.Ctime)));
            Assert.Equal(192, Unsafe.SizeOf<Libc.XfsSwapExt>());
            Assert.Equal(56, (int)Marshal.OffsetOf<Libc.XfsSwapExt>(nameof(Libc.XfsSwapExt.Stat)));
            Assert.Equal(88, Unsafe.SizeOf<Libc.XfsCommitRange>());
            Assert.Equal(40, (int)Marshal.OffsetOf<Libc.XfsCommitRange>(nameof(Libc.XfsCommitRange.File2Freshness)));
            Assert.Equal(40, Unsafe.SizeOf<Libc.MoveExtent>());
            Assert.Equal(32, (int)Marshal.OffsetOf<Libc.MoveExtent>(nameof(Libc.MoveExtent.MovedLength)));

            Assert.Equal(Libc.XFS_IOC_SWAPEXT, Ioc(3, 'X', 109, Unsafe.SizeOf<Libc.XfsSwapExt>()));
            Assert.Equal(Libc.XFS_IOC_FSGEOMETRY, Ioc(2, 'X', 126, Libc.XfsGeometrySize));
            Assert.Equal(Libc.XFS_IOC_START_COMMIT, Ioc(2, 'X', 130, Unsafe.SizeOf<Libc.XfsCommitRange>()));
            Assert.Equal(Libc.XFS_IOC_COMMIT_RANGE, Ioc(1, 'X', 131, Unsafe.SizeOf<Libc.XfsCommitRange>()));
            Assert.Equal(Libc.EXT4_IOC_MOVE_EXT, Ioc(3, 'f', 15, Unsafe.SizeOf<Libc.MoveExtent>()));
            Assert.Equal(0xC0C0586Du, Libc.XFS_IOC_SWAPEXT); // reference 3.1
            Assert.Equal(0xC028660Fu, Libc.EXT4_IOC_MOVE_EXT);
        }

        private static uint Ioc(uint dir, char type, uint nr, int size) => (dir << 30) | ((uint)size << 16) | ((uint)type << 8) | nr;
    }
}
