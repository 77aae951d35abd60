namespace Btrfs.Core
{
    using System.Globalization;
    using Btrfs.Interop;

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

    /// <summary>A filesystem identified by its statfs f_type magic number.</summary>
    public readonly record struct FileSystemType(FileSystemKind Kind, long Magic)
    {
        private static readonly (FileSystemKind Kind, long Magic, string Name)[] Known =
        {
            (FileSystemKind.Btrfs, Libc.BTRFS_SUPER_MAGIC, "btrfs"),
            (FileSystemKind.Xfs, Libc.XFS_SUPER_MAGIC, "xfs"),
            (FileSystemKind.Ext4, Libc.EXT4_SUPER_MAGIC, "ext4"),
            (FileSystemKind.Tmpfs, Libc.TMPFS_MAGIC, "tmpfs"),
            (FileSystemKind.Proc, Libc.PROC_SUPER_MAGIC, "proc"),
            (FileSystemKind.Sysfs, Libc.SYSFS_MAGIC, "sysfs"),
            (FileSystemKind.Devpts, Libc.DEVPTS_SUPER_MAGIC, "devpts"),
            (FileSystemKind.Cgroup, Libc.CGROUP_SUPER_MAGIC, "cgroup"),
            (FileSystemKind.Cgroup2, Libc.CGROUP2_SUPER_MAGIC, "cgroup2"),
            (FileSystemKind.Debugfs, Libc.DEBUGFS_MAGIC, "debugfs"),
            (FileSystemKind.Tracefs, Libc.TRACEFS_MAGIC, "tracefs"),
            (FileSystemKind.Securityfs, Libc.SECURITYFS_MAGIC, "securityfs"),
            (FileSystemKind.Bpf, Libc.BPF_FS_MAGIC, "bpf"),
            (FileSystemKind.Efivarfs, Libc.EFIVARFS_MAGIC, "efivarfs"),
            (FileSystemKind.Autofs, Libc.AUTOFS_SUPER_MAGIC, "autofs"),
            (FileSystemKind.Ramfs, Libc.RAMFS_MAGIC, "ramfs"),
            (FileSystemKind.Hugetlbfs, Libc.HUGETLBFS_MAGIC, "hugetlbfs"),
            (FileSystemKind.Overlay, Libc.OVERLAYFS_SUPER_MAGIC, "overlayfs"),
            (FileSystemKind.Fuse, Libc.FUSE_SUPER_MAGIC, "FUSE"),
            (FileSystemKind.Nfs, Libc.NFS_SUPER_MAGIC, "NFS"),
            (FileSystemKind.Cifs, Libc.CIFS_SUPER_MAGIC, "CIFS (SMB1)"),
            (FileSystemKind.Smb, Libc.SMB2_SUPER_MAGIC, "SMB"),
            (FileSystemKind.Ceph, Libc.CEPH_SUPER_MAGIC, "Ceph"),
            (FileSystemKind.V9fs, Libc.V9FS_MAGIC, "9p"),
            (FileSystemKind.Zfs, Libc.ZFS_SUPER_MAGIC, "ZFS"),
            (FileSystemKind.F2fs, Libc.F2FS_SUPER_MAGIC, "f2fs"),
            (FileSystemKind.Bcachefs, Libc.BCACHEFS_SUPER_MAGIC, "bcachefs"),
            (FileSystemKind.Nilfs, Libc.NILFS_SUPER_MAGIC, "nilfs2"),
            (FileSystemKind.Ocfs2, Libc.OCFS2_SUPER_MAGIC, "OCFS2"),
            (FileSystemKind.Reiserfs, Libc.REISERFS_SUPER_MAGIC, "ReiserFS"),
            (FileSystemKind.Squashfs, Libc.SQUASHFS_MAGIC, "squashfs"),
            (FileSystemKind.Erofs, Libc.EROFS_SUPER_MAGIC_V1, "erofs"),
            (FileSystemKind.Iso9660, Libc.ISOFS_SUPER_MAGIC, "ISO 9660"),
            (FileSystemKind.Udf, Libc.UDF_SUPER_MAGIC, "UDF"),
            (FileSystemKind.Vfat, Libc.MSDOS_SUPER_MAGIC, "vfat (FAT)"),
            (FileSystemKind.Exfat, Libc.EXFAT_SUPER_MAGIC, "exFAT"),
            (FileSystemKind.Ntfs, Libc.NTFS3_SUPER_MAGIC, "NTFS"),
        };

        /// <summary>Classifies an f_type value.</summary>
        public static FileSystemType FromMagic(long magic)
        {
            // f_type is a signed word; btrfs' magic has bit 31 set, so compare the low 32 bits.
            long m = magic & 0xFFFFFFFFL;
            foreach ((FileSystemKind kind, long known, _) in Known)
            {
                if (known == m)
                {
                    return new FileSystemType(kind, m);
                }
            }

            return new FileSystemType(FileSystemKind.Other, m);
        }

        /// <summary>A name for messages: "btrfs", "xfs", "proc", "NFS"..., or "a filesystem with magic 0x…" for one this module does not know.</summary>
        public string DisplayName
        {
            get
            {
                foreach ((FileSystemKind kind, _, string name) in Known)
                {
                    if (kind == Kind)
                    {
                        return name;
                    }
                }

                return "a filesystem with magic 0x" + Magic.ToString("X8", CultureInfo.InvariantCulture);
            }
        }

        /// <inheritdoc/>
        public override string ToString() => DisplayName;
    }
}
