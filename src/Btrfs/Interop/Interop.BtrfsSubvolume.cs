namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// btrfs subvolume ioctls and root-tree keys (include/uapi/linux/btrfs.h, btrfs_tree.h): create a
    /// subvolume or snapshot, delete one, wait for the cleaner, and list subvolumes without privilege
    /// (GET_SUBVOL_ROOTREF, INO_LOOKUP_USER) or as root (TREE_SEARCH of the root tree).
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2): a snapshot of the subvolume <c>fd</c> named <c>name</c> in the directory the ioctl is called on.</summary>
        internal const uint BTRFS_IOC_SNAP_CREATE_V2 = 0x50009417;

        /// <summary>_IOW(0x94, 24, struct btrfs_ioctl_vol_args_v2): a new empty subvolume named <c>name</c> in the directory the ioctl is called on.</summary>
        internal const uint BTRFS_IOC_SUBVOL_CREATE_V2 = 0x50009418;

        /// <summary>_IOW(0x94, 63, struct btrfs_ioctl_vol_args_v2): delete the subvolume <c>name</c> of the directory, or with SPEC_BY_ID the subvolume <c>subvolid</c>.</summary>
        internal const uint BTRFS_IOC_SNAP_DESTROY_V2 = 0x5000943F;

        /// <summary>_IOWR(0x94, 61, struct btrfs_ioctl_get_subvol_rootref_args): the subvolumes directly under the fd's subvolume, 255 at a time; no privilege.</summary>
        internal const uint BTRFS_IOC_GET_SUBVOL_ROOTREF = 0xD000943D;

        /// <summary>_IOWR(0x94, 62, struct btrfs_ioctl_ino_lookup_user_args): a child subvolume's name and the path to it from the fd's subvolume; no privilege, but every directory on the way must be readable and searchable (MAY_READ | MAY_EXEC).</summary>
        internal const uint BTRFS_IOC_INO_LOOKUP_USER = 0xD000943E;

        /// <summary>_IOW(0x94, 65, struct btrfs_ioctl_subvol_wait), newer kernels: wait until a deleted subvolume is cleaned up (ENOTTY where missing).</summary>
        internal const uint BTRFS_IOC_SUBVOL_SYNC_WAIT = 0x40109441;

        /// <summary>_IO(0x94, 8): commit the filesystem and wake the transaction thread, which starts the cleaner on deleted subvolumes (syncfs does not wake it).</summary>
        internal const uint BTRFS_IOC_SYNC = 0x9408;

        /// <summary>vol_args_v2 flag: the snapshot is read-only.</summary>
        internal const ulong BTRFS_SUBVOL_RDONLY = 1UL << 1;

        /// <summary>vol_args_v2 flag (SNAP_DESTROY_V2): the subvolume is given by id (subvolid), not by name.</summary>
        internal const ulong BTRFS_SUBVOL_SPEC_BY_ID = 1UL << 4;

        /// <summary>SUBVOL_SYNC_WAIT mode: wait for the subvolume given by id.</summary>
        internal const uint BTRFS_SUBVOL_SYNC_WAIT_FOR_ONE = 0;

        /// <summary>GET_SUBVOL_ROOTREF returns this many references per call (EOVERFLOW: call again).</summary>
        internal const int BTRFS_MAX_ROOTREF_BUFFER_NUM = 255;

        /// <summary>The longest subvolume name.</summary>
        internal const int BTRFS_VOL_NAME_MAX = 255;

        /// <summary>Root tree: the directory holding the "default" entry (the subvolume mounted without subvol=).</summary>
        internal const ulong BTRFS_ROOT_TREE_DIR_OBJECTID = 6;

        internal const uint BTRFS_DIR_ITEM_KEY = 84;
        internal const uint BTRFS_ROOT_ITEM_KEY = 132;
        internal const uint BTRFS_ROOT_REF_KEY = 156;

        /// <summary>struct btrfs_root_item (packed): offsets of the fields read.</summary>
        internal const int RootItemGenerationOffset = 160;
        internal const int RootItemFlagsOffset = 208;
        internal const int RootItemRefsOffset = 216;
        internal const int RootItemGenerationV2Offset = 239;
        internal const int RootItemUuidOffset = 247;
        internal const int RootItemParentUuidOffset = 263;
        internal const int RootItemReceivedUuidOffset = 279;
        internal const int RootItemCTransIdOffset = 295;
        internal const int RootItemOTransIdOffset = 303;
        internal const int RootItemCTimeOffset = 327;
        internal const int RootItemOTimeOffset = 339;

        /// <summary>The size of struct btrfs_root_item; older filesystems have items that end at generation_v2 (239), without uuids or times.</summary>
        internal const int RootItemSize = 439;

        /// <summary>struct btrfs_dir_item (packed): location key (objectid 0, type 8, offset 9), transid 17, data_len 25, name_len 27, type 29; the name at 30.</summary>
        internal const int DirItemNameLengthOffset = 27;
        internal const int DirItemSize = 30;

        /// <summary>struct btrfs_ioctl_vol_args_v2, 4096 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 4096)]
        internal unsafe struct BtrfsVolArgsV2
        {
            public const int NameMax = 4040;

            /// <summary>SNAP_CREATE_V2: the source subvolume's descriptor.</summary>
            [FieldOffset(0)] public long Fd;
            [FieldOffset(8)] public ulong TransId;
            [FieldOffset(16)] public ulong Flags;

            /// <summary>The name (NUL-terminated).</summary>
            [FieldOffset(56)] public fixed byte Name[NameMax];

            /// <summary>SNAP_DESTROY_V2 with SPEC_BY_ID: the subvolume id (shares the name's place).</summary>
            [FieldOffset(56)] public ulong SubvolId;
        }

        /// <summary>struct btrfs_ioctl_get_subvol_rootref_args, 4096 bytes: min_treeid in, then pairs (treeid, dirid), num_items.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 4096)]
        internal unsafe struct BtrfsGetSubvolRootRefArgs
        {
            [FieldOffset(0)] public ulong MinTreeId;

            /// <summary>BTRFS_MAX_ROOTREF_BUFFER_NUM pairs of u64: treeid, dirid.</summary>
            [FieldOffset(8)] public fixed ulong RootRefs[2 * 255];
            [FieldOffset(4088)] public byte NumItems;
        }

        /// <summary>struct btrfs_ioctl_ino_lookup_user_args, 4096 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 4096)]
        internal unsafe struct BtrfsInoLookupUserArgs
        {
            public const int PathMax = 4080 - 255 - 1;

            /// <summary>In: the directory (of the fd's subvolume) holding the subvolume.</summary>
            [FieldOffset(0)] public ulong DirId;

            /// <summary>In: the subvolume.</summary>
            [FieldOffset(8)] public ulong TreeId;

            /// <summary>Out: the subvolume's name.</summary>
            [FieldOffset(16)] public fixed byte Name[256];

            /// <summary>Out: the directory's path from the fd's subvolume root, with a trailing '/' ("" for the root).</summary>
            [FieldOffset(272)] public fixed byte Path[PathMax];
        }

        /// <summary>struct btrfs_ioctl_get_subvol_info_args, 504 bytes, complete.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 504)]
        internal unsafe struct BtrfsSubvolInfo
        {
            [FieldOffset(0)] public ulong TreeId;
            [FieldOffset(8)] public fixed byte Name[256];
            [FieldOffset(264)] public ulong ParentId;
            [FieldOffset(272)] public ulong DirId;
            [FieldOffset(280)] public ulong Generation;
            [FieldOffset(288)] public ulong Flags;
            [FieldOffset(296)] public fixed byte Uuid[16];
            [FieldOffset(312)] public fixed byte ParentUuid[16];
            [FieldOffset(328)] public fixed byte ReceivedUuid[16];
            [FieldOffset(344)] public ulong CTransId;
            [FieldOffset(352)] public ulong OTransId;
            [FieldOffset(360)] public ulong STransId;
            [FieldOffset(368)] public ulong RTransId;
            [FieldOffset(376)] public ulong CTimeSec;
            [FieldOffset(384)] public uint CTimeNsec;
            [FieldOffset(392)] public ulong OTimeSec;
            [FieldOffset(400)] public uint OTimeNsec;
        }

        /// <summary>struct btrfs_ioctl_subvol_wait, 16 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BtrfsSubvolWait
        {
            public ulong SubvolId;
            public uint Mode;
            public uint Count;
        }
    }
}
