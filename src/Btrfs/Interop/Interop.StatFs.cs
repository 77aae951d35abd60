namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>fstatfs(2) and the f_type magic numbers (include/uapi/linux/magic.h).</summary>
    internal static partial class Libc
    {
        /// <summary>FS_IOC_GETFSUUID, _IOR(0x15, 0, struct fsuuid2 { __u8 len; __u8 uuid[16]; }) (Linux 6.5): the filesystem's UUID.</summary>
        internal const uint FS_IOC_GETFSUUID = 0x80111500;

        internal const long BTRFS_SUPER_MAGIC = 0x9123683E;
        internal const long XFS_SUPER_MAGIC = 0x58465342;
        internal const long EXT4_SUPER_MAGIC = 0xEF53; // ext2, ext3 and ext4 share it
        internal const long TMPFS_MAGIC = 0x01021994;

        // Filesystems users meet that have no extents to show (or none this module handles); named in messages.
        // ZFS_SUPER_MAGIC (out of tree) and NTFS3_SUPER_MAGIC (fs/ntfs3) are not in uapi/linux/magic.h.
        internal const long PROC_SUPER_MAGIC = 0x9fa0;
        internal const long SYSFS_MAGIC = 0x62656572;
        internal const long DEVPTS_SUPER_MAGIC = 0x1cd1;
        internal const long CGROUP_SUPER_MAGIC = 0x27e0eb;
        internal const long CGROUP2_SUPER_MAGIC = 0x63677270;
        internal const long DEBUGFS_MAGIC = 0x64626720;
        internal const long TRACEFS_MAGIC = 0x74726163;
        internal const long SECURITYFS_MAGIC = 0x73636673;
        internal const long BPF_FS_MAGIC = 0xcafe4a11;
        internal const long EFIVARFS_MAGIC = 0xde5e81e4;
        internal const long AUTOFS_SUPER_MAGIC = 0x0187;
        internal const long RAMFS_MAGIC = 0x858458f6;
        internal const long HUGETLBFS_MAGIC = 0x958458f6;
        internal const long OVERLAYFS_SUPER_MAGIC = 0x794c7630;
        internal const long FUSE_SUPER_MAGIC = 0x65735546;
        internal const long NFS_SUPER_MAGIC = 0x6969;
        internal const long CIFS_SUPER_MAGIC = 0xFF534D42;
        internal const long SMB2_SUPER_MAGIC = 0xFE534D42;
        internal const long CEPH_SUPER_MAGIC = 0x00c36400;
        internal const long V9FS_MAGIC = 0x01021997;
        internal const long ZFS_SUPER_MAGIC = 0x2fc12fc1;
        internal const long F2FS_SUPER_MAGIC = 0xF2F52010;
        internal const long BCACHEFS_SUPER_MAGIC = 0xca451a4e;
        internal const long NILFS_SUPER_MAGIC = 0x3434;
        internal const long OCFS2_SUPER_MAGIC = 0x7461636f;
        internal const long REISERFS_SUPER_MAGIC = 0x52654973;
        internal const long SQUASHFS_MAGIC = 0x73717368;
        internal const long EROFS_SUPER_MAGIC_V1 = 0xE0F5E1E2;
        internal const long ISOFS_SUPER_MAGIC = 0x9660;
        internal const long UDF_SUPER_MAGIC = 0x15013346;
        internal const long MSDOS_SUPER_MAGIC = 0x4d44;
        internal const long EXFAT_SUPER_MAGIC = 0x2011BAB0;
        internal const long NTFS3_SUPER_MAGIC = 0x7366746e;

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
            [FieldOffset(56)] public ulong FileSystemId;
            [FieldOffset(72)] public long FragmentSize;
            [FieldOffset(80)] public long MountFlags;
        }

        [LibraryImport(Name, EntryPoint = "fstatfs", SetLastError = true)]
        internal static partial int FStatFs(SafeFileDescriptor fd, out StatFs buf);
    }
}
