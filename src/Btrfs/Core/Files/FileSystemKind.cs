namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>The filesystem a file lives on, from statfs(2) f_type.</summary>
    public enum FileSystemKind
    {
        /// <summary>Any filesystem not named below; see <see cref="FileSystemType.Magic"/>.</summary>
        Other = 0,

        /// <summary>btrfs (0x9123683E).</summary>
        Btrfs,

        /// <summary>XFS (0x58465342).</summary>
        Xfs,

        /// <summary>ext4, and ext2/ext3, which share its magic (0xEF53).</summary>
        Ext4,

        /// <summary>tmpfs (0x01021994): no FIEMAP.</summary>
        Tmpfs,

        /// <summary>proc (0x9fa0).</summary>
        Proc,

        /// <summary>sysfs (0x62656572).</summary>
        Sysfs,

        /// <summary>devpts (0x1cd1).</summary>
        Devpts,

        /// <summary>cgroup (0x27e0eb).</summary>
        Cgroup,

        /// <summary>cgroup2 (0x63677270).</summary>
        Cgroup2,

        /// <summary>debugfs (0x64626720).</summary>
        Debugfs,

        /// <summary>tracefs (0x74726163).</summary>
        Tracefs,

        /// <summary>securityfs (0x73636673).</summary>
        Securityfs,

        /// <summary>bpf (0xcafe4a11).</summary>
        Bpf,

        /// <summary>efivarfs (0xde5e81e4).</summary>
        Efivarfs,

        /// <summary>autofs (0x0187).</summary>
        Autofs,

        /// <summary>ramfs (0x858458f6).</summary>
        Ramfs,

        /// <summary>hugetlbfs (0x958458f6).</summary>
        Hugetlbfs,

        /// <summary>overlayfs (0x794c7630).</summary>
        Overlay,

        /// <summary>FUSE (0x65735546).</summary>
        Fuse,

        /// <summary>NFS (0x6969).</summary>
        Nfs,

        /// <summary>CIFS (SMB1) (0xFF534D42).</summary>
        Cifs,

        /// <summary>SMB (0xFE534D42).</summary>
        Smb,

        /// <summary>Ceph (0x00c36400).</summary>
        Ceph,

        /// <summary>9p (0x01021997).</summary>
        V9fs,

        /// <summary>ZFS (0x2fc12fc1).</summary>
        Zfs,

        /// <summary>f2fs (0xF2F52010).</summary>
        F2fs,

        /// <summary>bcachefs (0xca451a4e).</summary>
        Bcachefs,

        /// <summary>nilfs2 (0x3434).</summary>
        Nilfs,

        /// <summary>OCFS2 (0x7461636f).</summary>
        Ocfs2,

        /// <summary>ReiserFS (0x52654973).</summary>
        Reiserfs,

        /// <summary>squashfs (0x73717368).</summary>
        Squashfs,

        /// <summary>erofs (0xE0F5E1E2).</summary>
        Erofs,

        /// <summary>ISO 9660 (0x9660).</summary>
        Iso9660,

        /// <summary>UDF (0x15013346).</summary>
        Udf,

        /// <summary>vfat (FAT) (0x4d44).</summary>
        Vfat,

        /// <summary>exFAT (0x2011BAB0).</summary>
        Exfat,

        /// <summary>NTFS (0x7366746e).</summary>
        Ntfs,
    }
}
