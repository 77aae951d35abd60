namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// btrfs filesystem-wide ioctls: BTRFS_IOC_FS_INFO, BTRFS_IOC_SPACE_INFO and BTRFS_IOC_TREE_SEARCH_V2
    /// (include/uapi/linux/btrfs.h, btrfs_tree.h). Tree items are packed little-endian: read with offsets.
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOR(0x94, 31, struct btrfs_ioctl_fs_info_args): 1024 bytes; no privilege needed.</summary>
        internal const uint BTRFS_IOC_FS_INFO = 0x8400941F;

        /// <summary>_IOWR(0x94, 30, struct btrfs_ioctl_dev_info_args): 4096 bytes; a device of the filesystem by its id (the path it was opened by); any user on current kernels (reading the device itself needs root).</summary>
        internal const uint BTRFS_IOC_DEV_INFO = 0xD000941E;

        /// <summary>_IOWR(0x94, 20, struct btrfs_ioctl_space_args): 16-byte header, then 24-byte entries.</summary>
        internal const uint BTRFS_IOC_SPACE_INFO = 0xC0109414;

        /// <summary>_IOWR(0x94, 17, struct btrfs_ioctl_search_args_v2): 112-byte header, then items; needs CAP_SYS_ADMIN.</summary>
        internal const uint BTRFS_IOC_TREE_SEARCH_V2 = 0xC0709411;

        internal const ulong BTRFS_BLOCK_GROUP_DATA = 1;
        internal const ulong BTRFS_BLOCK_GROUP_METADATA = 4;
        internal const ulong BTRFS_BLOCK_GROUP_PROFILE_MASK = 0x7F8;
        internal const ulong BTRFS_SPACE_INFO_GLOBAL_RSV = 1UL << 49;

        internal const ulong BTRFS_CHUNK_TREE_OBJECTID = 3;
        internal const ulong BTRFS_FIRST_CHUNK_TREE_OBJECTID = 256;
        internal const uint BTRFS_CHUNK_ITEM_KEY = 228;

        /// <summary>The checksum tree: EXTENT_CSUM items keyed by the disk address of their first sector, holding one checksum per sector.</summary>
        internal const ulong BTRFS_CSUM_TREE_OBJECTID = 7;
        internal const ulong BTRFS_EXTENT_CSUM_OBJECTID = unchecked((ulong)-10L);
        internal const uint BTRFS_EXTENT_CSUM_KEY = 128;

        /// <summary>FS_INFO flags in: fill csum_type and csum_size (kernels since 2020; set again in flags out when filled, so an older kernel's silence is seen).</summary>
        internal const ulong BTRFS_FS_INFO_FLAG_CSUM_INFO = 1;

        internal const int EOVERFLOW = 75;

        /// <summary>struct btrfs_ioctl_fs_info_args (the fields used).</summary>
        [StructLayout(LayoutKind.Explicit, Size = 1024)]
        internal unsafe struct BtrfsFsInfo
        {
            [FieldOffset(0)] public ulong MaxId;
            [FieldOffset(8)] public ulong NumDevices;
            [FieldOffset(16)] public fixed byte FsId[16];
            [FieldOffset(32)] public uint NodeSize;
            [FieldOffset(36)] public uint SectorSize;
            [FieldOffset(40)] public uint CloneAlignment;
            [FieldOffset(44)] public ushort CsumType;
            [FieldOffset(46)] public ushort CsumSize;
            [FieldOffset(48)] public ulong Flags;
            [FieldOffset(56)] public ulong Generation;
        }

        /// <summary>struct btrfs_ioctl_dev_info_args (4096 bytes): devid in, path out (NUL-terminated, 1024 bytes at 3072).</summary>
        [StructLayout(LayoutKind.Explicit, Size = 4096)]
        internal unsafe struct BtrfsDevInfo
        {
            [FieldOffset(0)] public ulong DevId;
            [FieldOffset(24)] public ulong BytesUsed;
            [FieldOffset(32)] public ulong TotalBytes;

            /// <summary>The fsid of the filesystem the device belongs to (Linux 6.3+; zero before): a seed device's differs from the mounted filesystem's.</summary>
            [FieldOffset(40)] public fixed byte FsId[16];
            [FieldOffset(3072)] public fixed byte Path[1024];
        }

        /// <summary>struct btrfs_ioctl_search_key, 104 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsSearchKey
        {
            public ulong TreeId;
            public ulong MinObjectId;
            public ulong MaxObjectId;
            public ulong MinOffset;
            public ulong MaxOffset;
            public ulong MinTransId;
            public ulong MaxTransId;
            public uint MinType;
            public uint MaxType;
            public uint NrItems;
            public uint Unused;
            public ulong Unused1;
            public ulong Unused2;
            public ulong Unused3;
            public ulong Unused4;
        }

        /// <summary>struct btrfs_ioctl_search_header, 32 bytes, before each item in the buffer.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsSearchHeader
        {
            public ulong TransId;
            public ulong ObjectId;
            public ulong Offset;
            public uint Type;
            public uint Length;
        }
    }
}
