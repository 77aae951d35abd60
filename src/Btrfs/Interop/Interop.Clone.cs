namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>FICLONE, FICLONERANGE and FIDEDUPERANGE (include/uapi/linux/fs.h): reflinks and dedupe on btrfs and xfs.</summary>
    internal static partial class Libc
    {
        /// <summary>_IOW(0x94, 9, int): clone the whole source (the argument is its descriptor, by value) into the destination.</summary>
        internal const uint FICLONE = 0x40049409;

        /// <summary>_IOW(0x94, 13, struct file_clone_range).</summary>
        internal const uint FICLONERANGE = 0x4020940D;

        /// <summary>_IOWR(0x94, 54, struct file_dedupe_range); issued on the source.</summary>
        internal const uint FIDEDUPERANGE = 0xC0189436;

        internal const int FILE_DEDUPE_RANGE_SAME = 0;
        internal const int FILE_DEDUPE_RANGE_DIFFERS = 1;

        /// <summary>struct file_clone_range, 32 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct FileCloneRange
        {
            public long SourceFd;
            public ulong SourceOffset;
            public ulong SourceLength;
            public ulong DestinationOffset;
        }

        /// <summary>struct file_dedupe_range with one struct file_dedupe_range_info: 24 + 32 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct FileDedupeRangeOne
        {
            public ulong SourceOffset;
            public ulong SourceLength;
            public ushort DestinationCount;
            public ushort Reserved1;
            public uint Reserved2;

            // info[0]
            public long DestinationFd;
            public ulong DestinationOffset;
            public ulong BytesDeduped;
            public int Status;
            public uint Reserved;
        }

        /// <summary>ioctl(2) whose argument is a value, not a pointer (FICLONE takes the source descriptor).</summary>
        [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
        internal static partial int IoctlValue(SafeFileDescriptor fd, nuint request, nint arg);
    }
}
