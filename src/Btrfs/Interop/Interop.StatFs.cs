namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>fstatfs(2) and the f_type magic numbers (include/uapi/linux/magic.h).</summary>
    internal static partial class Libc
    {
        internal const long BTRFS_SUPER_MAGIC = 0x9123683E;
        internal const long XFS_SUPER_MAGIC = 0x58465342;
        internal const long EXT4_SUPER_MAGIC = 0xEF53; // ext2, ext3 and ext4 share it
        internal const long TMPFS_MAGIC = 0x01021994;

        /// <summary>f_flags: mounted read-only.</summary>
        internal const long ST_RDONLY = 0x1;

        /// <summary>
        /// struct statfs on 64-bit Linux (x86_64, arm64): every field is a 64-bit word, 120 bytes.
        /// Block counts are in units of f_frsize (f_bsize when that is 0).
        /// </summary>
        [StructLayout(LayoutKind.Explicit, Size = 120)]
        internal struct StatFs
        {
            [FieldOffset(0)] public long Type;
            [FieldOffset(8)] public long BlockSize;
            [FieldOffset(16)] public ulong Blocks;
            [FieldOffset(24)] public ulong BlocksFree;
            [FieldOffset(32)] public ulong BlocksAvailable;
            [FieldOffset(72)] public long FragmentSize;
            [FieldOffset(80)] public long MountFlags;
        }

        [LibraryImport(Name, EntryPoint = "fstatfs", SetLastError = true)]
        internal static partial int FStatFs(SafeFileDescriptor fd, out StatFs buf);
    }
}
