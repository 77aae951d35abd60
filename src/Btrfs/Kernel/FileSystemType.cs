namespace Btrfs.Kernel
{
    using System.Globalization;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>A filesystem identified by its statfs f_type magic number.</summary>
    internal readonly record struct FileSystemType(FileSystemKind Kind, long Magic)
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
        internal static FileSystemType FromMagic(long magic)
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
