namespace Btrfs.Interop
{
    /// <summary>
    /// FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, the chattr(1) inode flags (include/uapi/linux/fs.h).
    /// The request numbers encode sizeof(long), but the kernel reads and writes a 32-bit int:
    /// always pass a zeroed 32-bit value (kernel-and-anchors.md 3.3).
    /// </summary>
    internal static partial class Libc
    {
        internal const uint FS_IOC_GETFLAGS = 0x80086601;
        internal const uint FS_IOC_SETFLAGS = 0x40086602;

        /// <summary>_IOR('v', 1, long): the inode's generation (an int), which tells a new file from an old one of the same inode number.</summary>
        internal const uint FS_IOC_GETVERSION = 0x80087601;

        internal const uint FS_SECRM_FL = 0x1;
        internal const uint FS_UNRM_FL = 0x2;
        internal const uint FS_COMPR_FL = 0x4;
        internal const uint FS_SYNC_FL = 0x8;
        internal const uint FS_IMMUTABLE_FL = 0x10;
        internal const uint FS_APPEND_FL = 0x20;
        internal const uint FS_NODUMP_FL = 0x40;
        internal const uint FS_NOATIME_FL = 0x80;
        internal const uint FS_NOCOMP_FL = 0x400;
        internal const uint FS_DIRSYNC_FL = 0x10000;
        internal const uint FS_EXTENT_FL = 0x80000;
        internal const uint FS_NOCOW_FL = 0x800000;
        internal const uint FS_PROJINHERIT_FL = 0x20000000;
    }
}
