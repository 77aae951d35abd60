namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// EXT4_IOC_MOVE_EXT (fs/ext4/ext4.h, reference 3.13): moves a preallocated donor file's blocks under
    /// the original's data, the kernel copying the data page by page under its locks. Units are
    /// filesystem blocks; both descriptors need write access.
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOWR('f', 15, struct move_extent): 40 bytes.</summary>
        internal const uint EXT4_IOC_MOVE_EXT = 0xC028660F;

        /// <summary>struct move_extent, 40 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct MoveExtent
        {
            public uint Reserved;
            public uint DonorFd;
            public ulong OrigStart;
            public ulong DonorStart;
            public ulong Length;
            public ulong MovedLength;
        }
    }
}
