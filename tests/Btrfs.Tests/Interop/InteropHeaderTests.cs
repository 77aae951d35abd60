namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Runtime.CompilerServices;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// The interop constants and layouts against the C headers of this machine (glibc and the kernel's
    /// uapi), compiled and printed by gcc: an independent truth for every number typed by hand.
    /// </summary>
    public class InteropHeaderTests
    {
        private static readonly Lazy<Dictionary<string, ulong>> Header = new(Compile);

        private static Dictionary<string, ulong> Compile()
        {
            string dir = Directory.CreateTempSubdirectory("btrfs-interop-").FullName;
            try
            {
                string[] names =
                {
                    "O_NOFOLLOW", "O_DIRECTORY", "O_TMPFILE", "O_CREAT", "O_EXCL", "O_RDWR", "O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY",
                    "AT_EMPTY_PATH", "AT_SYMLINK_NOFOLLOW", "AT_SYMLINK_FOLLOW", "AT_FDCWD", "AT_EACCESS", "W_OK",
                    "SEEK_DATA", "SEEK_HOLE", "FALLOC_FL_KEEP_SIZE", "POSIX_FADV_SEQUENTIAL", "F_GETFL", "F_SETFL", "SYNC_FILE_RANGE_WRITE", "LOCK_EX", "LOCK_NB",
                    "FS_IOC_GETFLAGS", "FS_IOC_SETFLAGS", "FS_IOC_GETVERSION", "FS_IOC_FIEMAP", "FS_NOCOW_FL", "FS_COMPR_FL", "FS_IMMUTABLE_FL", "FS_APPEND_FL",
                    "FS_NODUMP_FL", "FS_NOATIME_FL", "FS_NOCOMP_FL", "FS_SYNC_FL", "FS_DIRSYNC_FL", "FS_PROJINHERIT_FL",
                    "BTRFS_IOC_GET_SUBVOL_INFO", "BTRFS_IOC_SNAP_CREATE_V2", "BTRFS_IOC_SUBVOL_CREATE_V2", "BTRFS_IOC_SNAP_DESTROY_V2",
                    "BTRFS_IOC_GET_SUBVOL_ROOTREF", "BTRFS_IOC_INO_LOOKUP_USER", "BTRFS_IOC_SYNC", "BTRFS_SUBVOL_RDONLY", "BTRFS_SUBVOL_SPEC_BY_ID",
                    "BTRFS_MAX_ROOTREF_BUFFER_NUM", "BTRFS_VOL_NAME_MAX", "BTRFS_ROOT_TREE_DIR_OBJECTID", "BTRFS_DIR_ITEM_KEY",
                    "BTRFS_ROOT_ITEM_KEY", "BTRFS_ROOT_REF_KEY", "STATX_MNT_ID", "STATX_BASIC_STATS", "ST_RDONLY",
                    "DT_REG", "DT_DIR", "DT_LNK", "DT_FIFO", "DT_UNKNOWN", "ENODATA", "ERANGE", "EDQUOT", "ENOTEMPTY", "EMLINK", "ENXIO",
                    "BTRFS_IOC_TREE_SEARCH_V2", "BTRFS_IOC_LOGICAL_INO_V2", "BTRFS_IOC_INO_PATHS", "BTRFS_IOC_INO_LOOKUP",
                    "BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET", "BTRFS_EXTENT_DATA_KEY", "BTRFS_INODE_ITEM_KEY", "BTRFS_ROOT_BACKREF_KEY", "BTRFS_ROOT_TREE_OBJECTID",
                    "BTRFS_FS_TREE_OBJECTID", "BTRFS_FIRST_FREE_OBJECTID", "BTRFS_FILE_EXTENT_INLINE", "BTRFS_FILE_EXTENT_REG",
                    "BTRFS_FILE_EXTENT_PREALLOC", "EOVERFLOW",
                    "FS_IOC_FSGETXATTR", "FS_IOC_FSSETXATTR", "FS_XFLAG_REALTIME", "FS_XFLAG_IMMUTABLE", "FS_XFLAG_APPEND", "FS_XFLAG_NODEFRAG",
                    "O_NOATIME", "EBUSY", "EFAULT", "O_DIRECT", "ENODEV", "BTRFS_IOC_DEV_INFO", "BTRFS_IOC_FS_INFO", "BTRFS_BLOCK_GROUP_METADATA",
                    "BTRFS_CHUNK_ITEM_KEY", "BTRFS_CSUM_TREE_OBJECTID", "BTRFS_EXTENT_CSUM_OBJECTID", "BTRFS_EXTENT_CSUM_KEY", "BTRFS_FS_INFO_FLAG_CSUM_INFO", "BTRFS_CHUNK_TREE_OBJECTID", "BTRFS_FIRST_CHUNK_TREE_OBJECTID", "BTRFS_LAST_FREE_OBJECTID",
                    "BTRFS_SUPER_MAGIC", "XFS_SUPER_MAGIC", "TMPFS_MAGIC", "PROC_SUPER_MAGIC", "SYSFS_MAGIC", "DEVPTS_SUPER_MAGIC", "CGROUP_SUPER_MAGIC", "CGROUP2_SUPER_MAGIC", "DEBUGFS_MAGIC", "TRACEFS_MAGIC", "SECURITYFS_MAGIC", "BPF_FS_MAGIC", "EFIVARFS_MAGIC", "AUTOFS_SUPER_MAGIC", "RAMFS_MAGIC", "HUGETLBFS_MAGIC", "OVERLAYFS_SUPER_MAGIC", "FUSE_SUPER_MAGIC", "NFS_SUPER_MAGIC", "CIFS_SUPER_MAGIC", "SMB2_SUPER_MAGIC", "CEPH_SUPER_MAGIC", "V9FS_MAGIC", "F2FS_SUPER_MAGIC", "NILFS_SUPER_MAGIC", "OCFS2_SUPER_MAGIC", "REISERFS_SUPER_MAGIC", "SQUASHFS_MAGIC", "EROFS_SUPER_MAGIC_V1", "ISOFS_SUPER_MAGIC", "UDF_SUPER_MAGIC", "MSDOS_SUPER_MAGIC", "EXFAT_SUPER_MAGIC",
                };
                string[] layout =
                {
                    "sizeof(struct statx)", "offsetof(struct statx, stx_atime)", "offsetof(struct statx, stx_ctime)",
                    "offsetof(struct statx, stx_mtime)", "offsetof(struct statx, stx_mnt_id)", "offsetof(struct statx, stx_attributes_mask)",
                    "sizeof(struct statfs)", "offsetof(struct statfs, f_frsize)", "offsetof(struct statfs, f_flags)", "offsetof(struct statfs, f_bavail)", "offsetof(struct statfs, f_fsid)",
                    "sizeof(struct btrfs_ioctl_get_subvol_info_args)", "offsetof(struct btrfs_ioctl_get_subvol_info_args, flags)",
                    "offsetof(struct btrfs_ioctl_get_subvol_info_args, name)",
                    "offsetof(struct dirent64, d_type)", "offsetof(struct dirent64, d_name)", "sizeof(struct timespec)",
                    "sizeof(struct btrfs_ioctl_search_key)", "sizeof(struct btrfs_ioctl_search_header)", "sizeof(struct btrfs_ioctl_search_args_v2)",
                    "sizeof(struct btrfs_ioctl_logical_ino_args)", "offsetof(struct btrfs_ioctl_logical_ino_args, flags)", "offsetof(struct btrfs_ioctl_logical_ino_args, inodes)",
                    "sizeof(struct btrfs_ioctl_ino_path_args)", "offsetof(struct btrfs_ioctl_ino_path_args, fspath)", "sizeof(struct btrfs_ioctl_ino_lookup_args)",
                    "offsetof(struct btrfs_ioctl_ino_lookup_args, name)", "sizeof(struct btrfs_data_container)", "offsetof(struct btrfs_data_container, elem_missed)",
                    "sizeof(struct btrfs_file_extent_item)", "offsetof(struct btrfs_file_extent_item, ram_bytes)", "offsetof(struct btrfs_file_extent_item, compression)",
                    "offsetof(struct btrfs_file_extent_item, type)", "offsetof(struct btrfs_file_extent_item, disk_bytenr)", "offsetof(struct btrfs_file_extent_item, disk_num_bytes)",
                    "offsetof(struct btrfs_file_extent_item, offset)", "offsetof(struct btrfs_file_extent_item, num_bytes)", "sizeof(struct btrfs_root_ref)",
                    "offsetof(struct btrfs_root_ref, name_len)", "sizeof(struct fsxattr)", "offsetof(struct fsxattr, fsx_projid)",
                    "sizeof(struct btrfs_ioctl_vol_args_v2)", "offsetof(struct btrfs_ioctl_vol_args_v2, flags)", "offsetof(struct btrfs_ioctl_vol_args_v2, name)",
                    "offsetof(struct btrfs_ioctl_vol_args_v2, subvolid)", "sizeof(struct btrfs_ioctl_get_subvol_rootref_args)",
                    "offsetof(struct btrfs_ioctl_get_subvol_rootref_args, num_items)", "sizeof(struct btrfs_ioctl_ino_lookup_user_args)",
                    "offsetof(struct btrfs_ioctl_ino_lookup_user_args, name)", "offsetof(struct btrfs_ioctl_ino_lookup_user_args, path)",
                    "offsetof(struct btrfs_ioctl_get_subvol_info_args, uuid)", "offsetof(struct btrfs_ioctl_get_subvol_info_args, parent_uuid)",
                    "offsetof(struct btrfs_ioctl_get_subvol_info_args, received_uuid)", "offsetof(struct btrfs_ioctl_get_subvol_info_args, otransid)",
                    "offsetof(struct btrfs_ioctl_get_subvol_info_args, ctime)", "offsetof(struct btrfs_ioctl_get_subvol_info_args, otime)",
                    "sizeof(struct btrfs_root_item)", "offsetof(struct btrfs_root_item, generation)", "offsetof(struct btrfs_root_item, flags)",
                    "offsetof(struct btrfs_root_item, refs)", "offsetof(struct btrfs_root_item, generation_v2)", "offsetof(struct btrfs_root_item, uuid)", "offsetof(struct btrfs_root_item, parent_uuid)",
                    "offsetof(struct btrfs_root_item, received_uuid)", "offsetof(struct btrfs_root_item, ctransid)", "offsetof(struct btrfs_root_item, otransid)",
                    "offsetof(struct btrfs_root_item, ctime)", "offsetof(struct btrfs_root_item, otime)", "sizeof(struct btrfs_dir_item)",
                    "offsetof(struct btrfs_dir_item, name_len)",
                    "sizeof(struct btrfs_ioctl_fs_info_args)", "offsetof(struct btrfs_ioctl_fs_info_args, fsid)", "offsetof(struct btrfs_ioctl_fs_info_args, nodesize)",
                    "offsetof(struct btrfs_ioctl_fs_info_args, csum_type)", "offsetof(struct btrfs_ioctl_fs_info_args, csum_size)", "offsetof(struct btrfs_ioctl_fs_info_args, generation)",
                    "sizeof(struct btrfs_ioctl_dev_info_args)", "offsetof(struct btrfs_ioctl_dev_info_args, bytes_used)", "offsetof(struct btrfs_ioctl_dev_info_args, total_bytes)",
                    "offsetof(struct btrfs_ioctl_dev_info_args, path)",
                    "offsetof(struct btrfs_root_item, bytenr)", "offsetof(struct btrfs_root_item, drop_progress)", "offsetof(struct btrfs_root_item, drop_level)",
                    "offsetof(struct btrfs_root_item, level)", "sizeof(struct btrfs_disk_key)",
                    "offsetof(struct btrfs_chunk, stripe_len)", "offsetof(struct btrfs_chunk, type)", "offsetof(struct btrfs_chunk, num_stripes)",
                    "offsetof(struct btrfs_chunk, sub_stripes)", "offsetof(struct btrfs_chunk, stripe)", "sizeof(struct btrfs_stripe)", "offsetof(struct btrfs_stripe, offset)",
                };
                string c = "#define _GNU_SOURCE\n#include <stdio.h>\n#include <stddef.h>\n#include <fcntl.h>\n#include <unistd.h>\n#include <dirent.h>\n#include <errno.h>\n"
                    + "#include <sys/stat.h>\n#include <sys/file.h>\n#include <sys/statfs.h>\n#include <sys/statvfs.h>\n#include <linux/fs.h>\n#include <linux/falloc.h>\n#include <linux/btrfs.h>\n#include <linux/btrfs_tree.h>\n#include <linux/fiemap.h>\n#include <linux/magic.h>\n"
                    + "int main(void) {\n"
                    + string.Concat(names.Select(n => $"  printf(\"{n}=%llu\\n\", (unsigned long long)(long long)({n}));\n"))
                    + string.Concat(layout.Select(n => $"  printf(\"{n}=%llu\\n\", (unsigned long long)({n}));\n"))
                    + "  return 0;\n}\n";
                string src = Path.Combine(dir, "h.c");
                string exe = Path.Combine(dir, "h");
                File.WriteAllText(src, c);
                Shell.Run("gcc", "-o", exe, src);
                return Shell.Run(exe).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(l => l.Split('='))
                    .ToDictionary(kv => kv[0], kv => ulong.Parse(kv[1], CultureInfo.InvariantCulture));
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        private static void Same(string name, ulong ours) =>
            Assert.True(H(name) == ours, $"{name}: the C headers say {H(name)} (0x{H(name):X}), the interop layer has {ours} (0x{ours:X})");

        private static ulong H(string name)
        {
            Requires.That(Shell.Exists("gcc"), "gcc and the C headers (libc6-dev, linux-libc-dev) are needed to compare the interop layer with them");
            return Header.Value[name];
        }

        [SkippableFact]
        public void OpenFlagsMatchThisArchitecture()
        {
            Same("O_NOFOLLOW", (ulong)Libc.O_NOFOLLOW);
            Same("O_DIRECTORY", (ulong)Libc.O_DIRECTORY);
            Same("O_TMPFILE", (ulong)Libc.O_TMPFILE);
            Same("O_CREAT", (ulong)Libc.O_CREAT);
            Same("O_EXCL", (ulong)Libc.O_EXCL);
            Same("O_RDWR", (ulong)Libc.O_RDWR);
            Same("O_NONBLOCK", (ulong)Libc.O_NONBLOCK);
            Same("O_CLOEXEC", (ulong)Libc.O_CLOEXEC);
            Same("O_NOCTTY", (ulong)Libc.O_NOCTTY);
            Same("AT_EMPTY_PATH", (ulong)Libc.AT_EMPTY_PATH);
            Same("AT_SYMLINK_NOFOLLOW", (ulong)Libc.AT_SYMLINK_NOFOLLOW);
            Same("AT_SYMLINK_FOLLOW", (ulong)Libc.AT_SYMLINK_FOLLOW);
            Same("AT_EACCESS", (ulong)Libc.AT_EACCESS);
            Same("W_OK", (ulong)Libc.W_OK);
            Same("AT_FDCWD", unchecked((ulong)(long)Libc.AT_FDCWD));
        }

        [SkippableFact]
        public void IoConstantsMatch()
        {
            Same("SEEK_DATA", (ulong)Libc.SEEK_DATA);
            Same("SEEK_HOLE", (ulong)Libc.SEEK_HOLE);
            Same("FALLOC_FL_KEEP_SIZE", (ulong)Libc.FALLOC_FL_KEEP_SIZE);
            Same("POSIX_FADV_SEQUENTIAL", (ulong)Libc.POSIX_FADV_SEQUENTIAL);
            Same("SYNC_FILE_RANGE_WRITE", (ulong)Libc.SYNC_FILE_RANGE_WRITE);
            Same("LOCK_EX", (ulong)Libc.LOCK_EX);
            Same("LOCK_NB", (ulong)Libc.LOCK_NB);
            Same("ENODATA", (ulong)Libc.ENODATA);
            Same("ERANGE", (ulong)Libc.ERANGE);
            Same("EDQUOT", (ulong)Libc.EDQUOT);
            Same("ENOTEMPTY", (ulong)Libc.ENOTEMPTY);
            Same("EMLINK", (ulong)Libc.EMLINK);
            Same("ENXIO", (ulong)Libc.ENXIO);
        }

        [SkippableFact]
        public void InodeFlagIoctlsAndBitsMatch()
        {
            Same("FS_IOC_GETFLAGS", (ulong)Libc.FS_IOC_GETFLAGS);
            Same("FS_IOC_SETFLAGS", (ulong)Libc.FS_IOC_SETFLAGS);
            Same("FS_IOC_GETVERSION", (ulong)Libc.FS_IOC_GETVERSION);
            Same("FS_IOC_FIEMAP", (ulong)Libc.FS_IOC_FIEMAP);
            Same("FS_NOCOW_FL", (ulong)Core.InodeFlags.NoCow);
            Same("FS_COMPR_FL", (ulong)Core.InodeFlags.Compress);
            Same("FS_IMMUTABLE_FL", (ulong)Core.InodeFlags.Immutable);
            Same("FS_APPEND_FL", (ulong)Core.InodeFlags.AppendOnly);
            Same("FS_NODUMP_FL", (ulong)Core.InodeFlags.NoDump);
            Same("FS_NOATIME_FL", (ulong)Core.InodeFlags.NoAtime);
            Same("FS_NOCOMP_FL", (ulong)Core.InodeFlags.NoCompress);
            Same("FS_SYNC_FL", (ulong)Core.InodeFlags.Sync);
            Same("FS_DIRSYNC_FL", (ulong)Core.InodeFlags.DirSync);
            Same("FS_PROJINHERIT_FL", (ulong)Core.InodeFlags.ProjectInherit);
            Same("FS_NOCOW_FL", (ulong)Libc.FS_NOCOW_FL);
        }

        [SkippableFact]
        public void StatxStatfsDirentAndSubvolumeLayoutsMatch()
        {
            Same("sizeof(struct statx)", (ulong)Unsafe.SizeOf<Libc.StatX>());
            Same("offsetof(struct statx, stx_atime)", (ulong)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.Atime)));
            Same("offsetof(struct statx, stx_ctime)", (ulong)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.Ctime)));
            Same("offsetof(struct statx, stx_mtime)", (ulong)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.Mtime)));
            Same("offsetof(struct statx, stx_mnt_id)", (ulong)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.MountId)));
            Same("offsetof(struct statx, stx_attributes_mask)", (ulong)Marshal.OffsetOf<Libc.StatX>(nameof(Libc.StatX.AttributesMask)));
            Same("STATX_MNT_ID", (ulong)Libc.STATX_MNT_ID);
            Same("STATX_BASIC_STATS", (ulong)Libc.STATX_BASIC_STATS);
            Same("sizeof(struct statfs)", (ulong)Unsafe.SizeOf<Libc.StatFs>());
            Same("offsetof(struct statfs, f_frsize)", (ulong)Marshal.OffsetOf<Libc.StatFs>(nameof(Libc.StatFs.FragmentSize)));
            Same("offsetof(struct statfs, f_flags)", (ulong)Marshal.OffsetOf<Libc.StatFs>(nameof(Libc.StatFs.MountFlags)));
            Same("offsetof(struct statfs, f_bavail)", (ulong)Marshal.OffsetOf<Libc.StatFs>(nameof(Libc.StatFs.BlocksAvailable)));
            Same("offsetof(struct statfs, f_fsid)", (ulong)Marshal.OffsetOf<Libc.StatFs>(nameof(Libc.StatFs.FileSystemId)));
            Same("ST_RDONLY", (ulong)Libc.ST_RDONLY);
            Same("offsetof(struct dirent64, d_type)", (ulong)Libc.DirentTypeOffset);
            Same("offsetof(struct dirent64, d_name)", (ulong)Libc.DirentNameOffset);
            Same("DT_REG", Libc.DT_REG);
            Same("DT_DIR", Libc.DT_DIR);
            Same("DT_LNK", Libc.DT_LNK);
            Same("DT_FIFO", Libc.DT_FIFO);
            Same("DT_UNKNOWN", Libc.DT_UNKNOWN);
            Same("sizeof(struct timespec)", (ulong)Unsafe.SizeOf<Libc.TimeSpec>());
            Same("BTRFS_IOC_GET_SUBVOL_INFO", (ulong)Libc.BTRFS_IOC_GET_SUBVOL_INFO);
            Same("sizeof(struct btrfs_ioctl_get_subvol_info_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsSubvolInfo>());
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, flags)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.Flags)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, name)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.Name)));
        }

        [SkippableFact]
        public void BtrfsInspectionIoctlsKeysAndItemLayoutsMatch()
        {
            Same("BTRFS_IOC_TREE_SEARCH_V2", Libc.BTRFS_IOC_TREE_SEARCH_V2);
            Same("BTRFS_IOC_LOGICAL_INO_V2", Libc.BTRFS_IOC_LOGICAL_INO_V2);
            Same("BTRFS_IOC_INO_PATHS", Libc.BTRFS_IOC_INO_PATHS);
            Same("BTRFS_IOC_INO_LOOKUP", Libc.BTRFS_IOC_INO_LOOKUP);
            Same("BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET", Libc.BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET);
            Same("BTRFS_EXTENT_DATA_KEY", Libc.BTRFS_EXTENT_DATA_KEY);
            Same("BTRFS_INODE_ITEM_KEY", Libc.BTRFS_INODE_ITEM_KEY);
            Same("BTRFS_ROOT_BACKREF_KEY", Libc.BTRFS_ROOT_BACKREF_KEY);
            Same("BTRFS_ROOT_TREE_OBJECTID", Libc.BTRFS_ROOT_TREE_OBJECTID);
            Same("BTRFS_FS_TREE_OBJECTID", Libc.BTRFS_FS_TREE_OBJECTID);
            Same("BTRFS_FIRST_FREE_OBJECTID", Libc.BTRFS_FIRST_FREE_OBJECTID);
            Same("BTRFS_FILE_EXTENT_INLINE", Libc.BTRFS_FILE_EXTENT_INLINE);
            Same("BTRFS_FILE_EXTENT_REG", Libc.BTRFS_FILE_EXTENT_REG);
            Same("BTRFS_FILE_EXTENT_PREALLOC", Libc.BTRFS_FILE_EXTENT_PREALLOC);
            Same("BTRFS_FILE_EXTENT_INLINE", (ulong)Core.BtrfsExtentType.Inline);
            Same("BTRFS_FILE_EXTENT_REG", (ulong)Core.BtrfsExtentType.Regular);
            Same("BTRFS_FILE_EXTENT_PREALLOC", (ulong)Core.BtrfsExtentType.Prealloc);
            Same("EOVERFLOW", (ulong)Libc.EOVERFLOW);

            Same("sizeof(struct btrfs_ioctl_search_key)", (ulong)Unsafe.SizeOf<Libc.BtrfsSearchKey>());
            Same("sizeof(struct btrfs_ioctl_search_header)", (ulong)Unsafe.SizeOf<Libc.BtrfsSearchHeader>());
            Same("sizeof(struct btrfs_ioctl_search_args_v2)", 112); // key + buf_size: BtrfsSearch's HeaderSize
            Same("sizeof(struct btrfs_ioctl_logical_ino_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsLogicalInoArgs>());
            Same("offsetof(struct btrfs_ioctl_logical_ino_args, flags)", (ulong)Marshal.OffsetOf<Libc.BtrfsLogicalInoArgs>(nameof(Libc.BtrfsLogicalInoArgs.Flags)));
            Same("offsetof(struct btrfs_ioctl_logical_ino_args, inodes)", (ulong)Marshal.OffsetOf<Libc.BtrfsLogicalInoArgs>(nameof(Libc.BtrfsLogicalInoArgs.Inodes)));
            Same("sizeof(struct btrfs_ioctl_ino_path_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsInoPathArgs>());
            Same("offsetof(struct btrfs_ioctl_ino_path_args, fspath)", (ulong)Marshal.OffsetOf<Libc.BtrfsInoPathArgs>(nameof(Libc.BtrfsInoPathArgs.FsPath)));
            Same("sizeof(struct btrfs_ioctl_ino_lookup_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsInoLookupArgs>());
            Same("offsetof(struct btrfs_ioctl_ino_lookup_args, name)", (ulong)Marshal.OffsetOf<Libc.BtrfsInoLookupArgs>(nameof(Libc.BtrfsInoLookupArgs.Name)));
            Same("sizeof(struct btrfs_data_container)", (ulong)Libc.DataContainerHeaderSize);
            Same("sizeof(struct btrfs_data_container)", (ulong)Unsafe.SizeOf<Libc.BtrfsDataContainer>());
            Same("offsetof(struct btrfs_data_container, elem_missed)", (ulong)Marshal.OffsetOf<Libc.BtrfsDataContainer>(nameof(Libc.BtrfsDataContainer.ElemMissed)));

            // Items are parsed by offset (BtrfsFileExtentRecord.Parse, SubvolumeMap): the offsets it uses.
            Same("sizeof(struct btrfs_file_extent_item)", (ulong)Libc.FileExtentItemSize);
            Same("offsetof(struct btrfs_file_extent_item, disk_bytenr)", (ulong)Libc.FileExtentInlineHeaderSize);
            Same("offsetof(struct btrfs_file_extent_item, ram_bytes)", 8);
            Same("offsetof(struct btrfs_file_extent_item, compression)", 16);
            Same("offsetof(struct btrfs_file_extent_item, type)", 20);
            Same("offsetof(struct btrfs_file_extent_item, disk_num_bytes)", 29);
            Same("offsetof(struct btrfs_file_extent_item, offset)", 37);
            Same("offsetof(struct btrfs_file_extent_item, num_bytes)", 45);
            Same("sizeof(struct btrfs_root_ref)", (ulong)Libc.RootRefSize);
            Same("offsetof(struct btrfs_root_ref, name_len)", 16);
        }

        [SkippableFact]
        public void SubvolumeIoctlsArgumentsAndRootItemsMatch()
        {
            Same("BTRFS_IOC_SNAP_CREATE_V2", (ulong)Libc.BTRFS_IOC_SNAP_CREATE_V2);
            Same("BTRFS_IOC_SUBVOL_CREATE_V2", (ulong)Libc.BTRFS_IOC_SUBVOL_CREATE_V2);
            Same("BTRFS_IOC_SNAP_DESTROY_V2", (ulong)Libc.BTRFS_IOC_SNAP_DESTROY_V2);
            Same("BTRFS_IOC_GET_SUBVOL_ROOTREF", (ulong)Libc.BTRFS_IOC_GET_SUBVOL_ROOTREF);
            Same("BTRFS_IOC_INO_LOOKUP_USER", (ulong)Libc.BTRFS_IOC_INO_LOOKUP_USER);
            Same("BTRFS_IOC_SYNC", (ulong)Libc.BTRFS_IOC_SYNC);
            Same("BTRFS_SUBVOL_RDONLY", Libc.BTRFS_SUBVOL_RDONLY);
            Same("BTRFS_SUBVOL_SPEC_BY_ID", Libc.BTRFS_SUBVOL_SPEC_BY_ID);
            Same("BTRFS_MAX_ROOTREF_BUFFER_NUM", (ulong)Libc.BTRFS_MAX_ROOTREF_BUFFER_NUM);
            Same("BTRFS_VOL_NAME_MAX", (ulong)Libc.BTRFS_VOL_NAME_MAX);
            Same("BTRFS_ROOT_TREE_DIR_OBJECTID", Libc.BTRFS_ROOT_TREE_DIR_OBJECTID);
            Same("BTRFS_DIR_ITEM_KEY", Libc.BTRFS_DIR_ITEM_KEY);
            Same("BTRFS_ROOT_ITEM_KEY", Libc.BTRFS_ROOT_ITEM_KEY);
            Same("BTRFS_ROOT_REF_KEY", Libc.BTRFS_ROOT_REF_KEY);

            Same("sizeof(struct btrfs_ioctl_vol_args_v2)", (ulong)Marshal.SizeOf<Libc.BtrfsVolArgsV2>());
            Same("offsetof(struct btrfs_ioctl_vol_args_v2, flags)", (ulong)Marshal.OffsetOf<Libc.BtrfsVolArgsV2>(nameof(Libc.BtrfsVolArgsV2.Flags)));
            Same("offsetof(struct btrfs_ioctl_vol_args_v2, name)", (ulong)Marshal.OffsetOf<Libc.BtrfsVolArgsV2>(nameof(Libc.BtrfsVolArgsV2.Name)));
            Same("offsetof(struct btrfs_ioctl_vol_args_v2, subvolid)", (ulong)Marshal.OffsetOf<Libc.BtrfsVolArgsV2>(nameof(Libc.BtrfsVolArgsV2.SubvolId)));
            Same("sizeof(struct btrfs_ioctl_get_subvol_rootref_args)", (ulong)Marshal.SizeOf<Libc.BtrfsGetSubvolRootRefArgs>());
            Same("offsetof(struct btrfs_ioctl_get_subvol_rootref_args, num_items)", (ulong)Marshal.OffsetOf<Libc.BtrfsGetSubvolRootRefArgs>(nameof(Libc.BtrfsGetSubvolRootRefArgs.NumItems)));
            Same("sizeof(struct btrfs_ioctl_ino_lookup_user_args)", (ulong)Marshal.SizeOf<Libc.BtrfsInoLookupUserArgs>());
            Same("offsetof(struct btrfs_ioctl_ino_lookup_user_args, name)", (ulong)Marshal.OffsetOf<Libc.BtrfsInoLookupUserArgs>(nameof(Libc.BtrfsInoLookupUserArgs.Name)));
            Same("offsetof(struct btrfs_ioctl_ino_lookup_user_args, path)", (ulong)Marshal.OffsetOf<Libc.BtrfsInoLookupUserArgs>(nameof(Libc.BtrfsInoLookupUserArgs.Path)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, uuid)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.Uuid)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, parent_uuid)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.ParentUuid)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, received_uuid)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.ReceivedUuid)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, otransid)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.OTransId)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, ctime)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.CTimeSec)));
            Same("offsetof(struct btrfs_ioctl_get_subvol_info_args, otime)", (ulong)Marshal.OffsetOf<Libc.BtrfsSubvolInfo>(nameof(Libc.BtrfsSubvolInfo.OTimeSec)));

            Same("sizeof(struct btrfs_root_item)", (ulong)Libc.RootItemSize);
            Same("offsetof(struct btrfs_root_item, generation)", (ulong)Libc.RootItemGenerationOffset);
            Same("offsetof(struct btrfs_root_item, flags)", (ulong)Libc.RootItemFlagsOffset);
            Same("offsetof(struct btrfs_root_item, refs)", (ulong)Libc.RootItemRefsOffset);
            Same("offsetof(struct btrfs_root_item, generation_v2)", (ulong)Libc.RootItemGenerationV2Offset);
            Same("offsetof(struct btrfs_root_item, uuid)", (ulong)Libc.RootItemUuidOffset);
            Same("offsetof(struct btrfs_root_item, parent_uuid)", (ulong)Libc.RootItemParentUuidOffset);
            Same("offsetof(struct btrfs_root_item, received_uuid)", (ulong)Libc.RootItemReceivedUuidOffset);
            Same("offsetof(struct btrfs_root_item, ctransid)", (ulong)Libc.RootItemCTransIdOffset);
            Same("offsetof(struct btrfs_root_item, otransid)", (ulong)Libc.RootItemOTransIdOffset);
            Same("offsetof(struct btrfs_root_item, ctime)", (ulong)Libc.RootItemCTimeOffset);
            Same("offsetof(struct btrfs_root_item, otime)", (ulong)Libc.RootItemOTimeOffset);
            Same("sizeof(struct btrfs_dir_item)", (ulong)Libc.DirItemSize);
            Same("offsetof(struct btrfs_dir_item, name_len)", (ulong)Libc.DirItemNameLengthOffset);
        }

        [SkippableFact]
        public void FsXattrAndTheDefragConstantsMatch()
        {
            Same("FS_IOC_FSGETXATTR", Libc.FS_IOC_FSGETXATTR);
            Same("FS_IOC_FSSETXATTR", Libc.FS_IOC_FSSETXATTR);
            Same("FS_XFLAG_REALTIME", Libc.FS_XFLAG_REALTIME);
            Same("FS_XFLAG_IMMUTABLE", Libc.FS_XFLAG_IMMUTABLE);
            Same("FS_XFLAG_APPEND", Libc.FS_XFLAG_APPEND);
            Same("FS_XFLAG_NODEFRAG", Libc.FS_XFLAG_NODEFRAG);
            Same("sizeof(struct fsxattr)", (ulong)Unsafe.SizeOf<Libc.FsXattr>());
            Same("offsetof(struct fsxattr, fsx_projid)", (ulong)Marshal.OffsetOf<Libc.FsXattr>(nameof(Libc.FsXattr.ProjId)));
            Same("O_NOATIME", (ulong)Libc.O_NOATIME);
            Same("EBUSY", (ulong)Libc.EBUSY);
            Same("EFAULT", (ulong)Libc.EFAULT);
        }

        [SkippableFact]
        public void FilesystemMagicNumbersMatch()
        {
            Same("BTRFS_SUPER_MAGIC", (ulong)Libc.BTRFS_SUPER_MAGIC);
            Same("XFS_SUPER_MAGIC", (ulong)Libc.XFS_SUPER_MAGIC);
            Same("TMPFS_MAGIC", (ulong)Libc.TMPFS_MAGIC);
            Same("PROC_SUPER_MAGIC", (ulong)Libc.PROC_SUPER_MAGIC);
            Same("SYSFS_MAGIC", (ulong)Libc.SYSFS_MAGIC);
            Same("DEVPTS_SUPER_MAGIC", (ulong)Libc.DEVPTS_SUPER_MAGIC);
            Same("CGROUP_SUPER_MAGIC", (ulong)Libc.CGROUP_SUPER_MAGIC);
            Same("CGROUP2_SUPER_MAGIC", (ulong)Libc.CGROUP2_SUPER_MAGIC);
            Same("DEBUGFS_MAGIC", (ulong)Libc.DEBUGFS_MAGIC);
            Same("TRACEFS_MAGIC", (ulong)Libc.TRACEFS_MAGIC);
            Same("SECURITYFS_MAGIC", (ulong)Libc.SECURITYFS_MAGIC);
            Same("BPF_FS_MAGIC", (ulong)Libc.BPF_FS_MAGIC);
            Same("EFIVARFS_MAGIC", (ulong)Libc.EFIVARFS_MAGIC);
            Same("AUTOFS_SUPER_MAGIC", (ulong)Libc.AUTOFS_SUPER_MAGIC);
            Same("RAMFS_MAGIC", (ulong)Libc.RAMFS_MAGIC);
            Same("HUGETLBFS_MAGIC", (ulong)Libc.HUGETLBFS_MAGIC);
            Same("OVERLAYFS_SUPER_MAGIC", (ulong)Libc.OVERLAYFS_SUPER_MAGIC);
            Same("FUSE_SUPER_MAGIC", (ulong)Libc.FUSE_SUPER_MAGIC);
            Same("NFS_SUPER_MAGIC", (ulong)Libc.NFS_SUPER_MAGIC);
            Same("CIFS_SUPER_MAGIC", (ulong)Libc.CIFS_SUPER_MAGIC);
            Same("SMB2_SUPER_MAGIC", (ulong)Libc.SMB2_SUPER_MAGIC);
            Same("CEPH_SUPER_MAGIC", (ulong)Libc.CEPH_SUPER_MAGIC);
            Same("V9FS_MAGIC", (ulong)Libc.V9FS_MAGIC);
            Same("F2FS_SUPER_MAGIC", (ulong)Libc.F2FS_SUPER_MAGIC);
            Same("NILFS_SUPER_MAGIC", (ulong)Libc.NILFS_SUPER_MAGIC);
            Same("OCFS2_SUPER_MAGIC", (ulong)Libc.OCFS2_SUPER_MAGIC);
            Same("REISERFS_SUPER_MAGIC", (ulong)Libc.REISERFS_SUPER_MAGIC);
            Same("SQUASHFS_MAGIC", (ulong)Libc.SQUASHFS_MAGIC);
            Same("EROFS_SUPER_MAGIC_V1", (ulong)Libc.EROFS_SUPER_MAGIC_V1);
            Same("ISOFS_SUPER_MAGIC", (ulong)Libc.ISOFS_SUPER_MAGIC);
            Same("UDF_SUPER_MAGIC", (ulong)Libc.UDF_SUPER_MAGIC);
            Same("MSDOS_SUPER_MAGIC", (ulong)Libc.MSDOS_SUPER_MAGIC);
            Same("EXFAT_SUPER_MAGIC", (ulong)Libc.EXFAT_SUPER_MAGIC);
        }

        [SkippableFact]
        public void WhatReadingTheTreesFromTheDevicesUsesMatches()
        {
            // Kernel/BtrfsDisk.cs and Kernel/BtrfsSearch.cs: the devices, the filesystem facts, the chunk map.
            Same("O_DIRECT", (ulong)Libc.O_DIRECT);
            Same("ENODEV", (ulong)Libc.ENODEV);
            Same("BTRFS_IOC_DEV_INFO", Libc.BTRFS_IOC_DEV_INFO);
            Same("BTRFS_IOC_FS_INFO", Libc.BTRFS_IOC_FS_INFO);
            Same("BTRFS_BLOCK_GROUP_METADATA", Libc.BTRFS_BLOCK_GROUP_METADATA);
            Same("BTRFS_CHUNK_ITEM_KEY", Libc.BTRFS_CHUNK_ITEM_KEY);
            Same("BTRFS_CHUNK_TREE_OBJECTID", Libc.BTRFS_CHUNK_TREE_OBJECTID);
            Same("BTRFS_CSUM_TREE_OBJECTID", Libc.BTRFS_CSUM_TREE_OBJECTID);
            Same("BTRFS_EXTENT_CSUM_OBJECTID", Libc.BTRFS_EXTENT_CSUM_OBJECTID);
            Same("BTRFS_EXTENT_CSUM_KEY", Libc.BTRFS_EXTENT_CSUM_KEY);
            Same("BTRFS_FS_INFO_FLAG_CSUM_INFO", Libc.BTRFS_FS_INFO_FLAG_CSUM_INFO);
            Same("BTRFS_FIRST_CHUNK_TREE_OBJECTID", Libc.BTRFS_FIRST_CHUNK_TREE_OBJECTID);
            Same("BTRFS_LAST_FREE_OBJECTID", Libc.BTRFS_LAST_FREE_OBJECTID);
            Same("sizeof(struct btrfs_ioctl_fs_info_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsFsInfo>());
            Same("offsetof(struct btrfs_ioctl_fs_info_args, fsid)", (ulong)Marshal.OffsetOf<Libc.BtrfsFsInfo>(nameof(Libc.BtrfsFsInfo.FsId)));
            Same("offsetof(struct btrfs_ioctl_fs_info_args, nodesize)", (ulong)Marshal.OffsetOf<Libc.BtrfsFsInfo>(nameof(Libc.BtrfsFsInfo.NodeSize)));
            Same("offsetof(struct btrfs_ioctl_fs_info_args, csum_type)", (ulong)Marshal.OffsetOf<Libc.BtrfsFsInfo>(nameof(Libc.BtrfsFsInfo.CsumType)));
            Same("offsetof(struct btrfs_ioctl_fs_info_args, csum_size)", (ulong)Marshal.OffsetOf<Libc.BtrfsFsInfo>(nameof(Libc.BtrfsFsInfo.CsumSize)));
            Same("offsetof(struct btrfs_ioctl_fs_info_args, generation)", (ulong)Marshal.OffsetOf<Libc.BtrfsFsInfo>(nameof(Libc.BtrfsFsInfo.Generation)));
            Same("sizeof(struct btrfs_ioctl_dev_info_args)", (ulong)Unsafe.SizeOf<Libc.BtrfsDevInfo>());
            Same("offsetof(struct btrfs_ioctl_dev_info_args, bytes_used)", (ulong)Marshal.OffsetOf<Libc.BtrfsDevInfo>(nameof(Libc.BtrfsDevInfo.BytesUsed)));
            Same("offsetof(struct btrfs_ioctl_dev_info_args, total_bytes)", (ulong)Marshal.OffsetOf<Libc.BtrfsDevInfo>(nameof(Libc.BtrfsDevInfo.TotalBytes)));
            Same("offsetof(struct btrfs_ioctl_dev_info_args, path)", (ulong)Marshal.OffsetOf<Libc.BtrfsDevInfo>(nameof(Libc.BtrfsDevInfo.Path)));

            // The on-disk items BtrfsTreeBlock reads at fixed offsets (the headers have no superblock or tree
            // block header: those are checked against dump-super and dump-tree by the measuring tests).
            Same("offsetof(struct btrfs_root_item, generation)", 160);
            Same("offsetof(struct btrfs_root_item, bytenr)", 176);
            Same("offsetof(struct btrfs_root_item, refs)", 216);
            Same("offsetof(struct btrfs_root_item, drop_progress)", 220);
            Same("sizeof(struct btrfs_disk_key)", 17);
            Same("offsetof(struct btrfs_root_item, drop_level)", 237);
            Same("offsetof(struct btrfs_root_item, level)", 238);
            Same("offsetof(struct btrfs_file_extent_item, type)", 20);
            Same("offsetof(struct btrfs_file_extent_item, disk_bytenr)", 21);
            Same("offsetof(struct btrfs_file_extent_item, disk_num_bytes)", 29);
            Same("sizeof(struct btrfs_file_extent_item)", 53);
            Same("offsetof(struct btrfs_chunk, stripe_len)", 16);
            Same("offsetof(struct btrfs_chunk, type)", 24);
            Same("offsetof(struct btrfs_chunk, num_stripes)", 44);
            Same("offsetof(struct btrfs_chunk, sub_stripes)", 46);
            Same("offsetof(struct btrfs_chunk, stripe)", 48);
            Same("sizeof(struct btrfs_stripe)", 32);
            Same("offsetof(struct btrfs_stripe, offset)", 8);
        }
    }
}
