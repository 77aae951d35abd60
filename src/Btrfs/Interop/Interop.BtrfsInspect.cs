namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// btrfs inspection ioctls and tree keys (include/uapi/linux/btrfs.h, btrfs_tree.h): which inodes
    /// reference an extent (LOGICAL_INO_V2), the paths of an inode (INO_PATHS), the path of a
    /// directory in a subvolume (INO_LOOKUP), and the item keys read with TREE_SEARCH_V2. All of
    /// them need CAP_SYS_ADMIN (EPERM otherwise), except INO_LOOKUP of objectid 256 in tree 0.
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOWR(0x94, 59, struct btrfs_ioctl_logical_ino_args): 56 bytes.</summary>
        internal const uint BTRFS_IOC_LOGICAL_INO_V2 = 0xC038943B;

        /// <summary>_IOWR(0x94, 35, struct btrfs_ioctl_ino_path_args): 56 bytes.</summary>
        internal const uint BTRFS_IOC_INO_PATHS = 0xC0389423;

        /// <summary>_IOWR(0x94, 18, struct btrfs_ioctl_ino_lookup_args): 4096 bytes.</summary>
        internal const uint BTRFS_IOC_INO_LOOKUP = 0xD0009412;

        /// <summary>LOGICAL_INO_V2 flag: every reference of the extent, not only those covering the address.</summary>
        internal const ulong BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET = 1;

        /// <summary>The kernel's cap on LOGICAL_INO_V2's buffer (and TREE_SEARCH_V2's).</summary>
        internal const int BTRFS_INSPECT_MAX_BUFFER = 16 << 20;

        internal const ulong BTRFS_ROOT_TREE_OBJECTID = 1;
        internal const ulong BTRFS_FS_TREE_OBJECTID = 5;
        internal const ulong BTRFS_FIRST_FREE_OBJECTID = 256;

        /// <summary>The inode of the empty directory a snapshot shows where its source had a nested subvolume (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID).</summary>
        internal const ulong BTRFS_EMPTY_SUBVOL_DIR_OBJECTID = 2;

        /// <summary>btrfs_inode_item.flags: immutable (chattr +i; BTRFS_INODE_IMMUTABLE, uapi btrfs_tree.h).</summary>
        internal const ulong BTRFS_INODE_IMMUTABLE = 1UL << 6;

        /// <summary>btrfs_inode_item.flags: append-only (chattr +a; BTRFS_INODE_APPEND).</summary>
        internal const ulong BTRFS_INODE_APPEND = 1UL << 7;
        internal const ulong BTRFS_LAST_FREE_OBJECTID = unchecked((ulong)-256L);

        internal const uint BTRFS_EXTENT_DATA_KEY = 108;

        /// <summary>The key type of an inode's btrfs_inode_item (its size at byte 16).</summary>
        internal const uint BTRFS_INODE_ITEM_KEY = 1;
        internal const uint BTRFS_ROOT_BACKREF_KEY = 144;

        internal const byte BTRFS_FILE_EXTENT_INLINE = 0;
        internal const byte BTRFS_FILE_EXTENT_REG = 1;
        internal const byte BTRFS_FILE_EXTENT_PREALLOC = 2;

        /// <summary>struct btrfs_file_extent_item (packed): the inline header ends at 21, the whole item is 53 bytes.</summary>
        internal const int FileExtentInlineHeaderSize = 21;
        internal const int FileExtentItemSize = 53;

        /// <summary>struct btrfs_root_ref (packed): dirid 0, sequence 8, name_len 16, then the name.</summary>
        internal const int RootRefSize = 18;

        /// <summary>struct btrfs_data_container header: bytes_left, bytes_missing, elem_cnt, elem_missed (u32 each), then u64 val[].</summary>
        internal const int DataContainerHeaderSize = 16;

        /// <summary>struct btrfs_ioctl_logical_ino_args, 56 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsLogicalInoArgs
        {
            public ulong Logical;
            public ulong Size;
            public ulong Reserved0;
            public ulong Reserved1;
            public ulong Reserved2;
            public ulong Flags;
            public ulong Inodes; // pointer to a btrfs_data_container
        }

        /// <summary>struct btrfs_ioctl_ino_path_args, 56 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsInoPathArgs
        {
            public ulong Inum;
            public ulong Size;
            public ulong Reserved0;
            public ulong Reserved1;
            public ulong Reserved2;
            public ulong Reserved3;
            public ulong FsPath; // pointer to a btrfs_data_container
        }

        /// <summary>struct btrfs_ioctl_ino_lookup_args, 4096 bytes: the path comes back in Name, NUL-terminated, with a trailing '/'.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct BtrfsInoLookupArgs
        {
            public const int NameMax = 4080;
            public ulong TreeId;
            public ulong ObjectId;
            public fixed byte Name[NameMax];
        }

        /// <summary>struct btrfs_data_container's header.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsDataContainer
        {
            public uint BytesLeft;
            public uint BytesMissing;
            public uint ElemCount;
            public uint ElemMissed;
        }
    }
}
