namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>btrfs ioctls on any file of a subvolume (include/uapi/linux/btrfs.h).</summary>
    internal static partial class Libc
    {
        /// <summary>_IOR(0x94, 60, struct btrfs_ioctl_get_subvol_info_args): no capability needed, any fd in the subvolume.</summary>
        internal const uint BTRFS_IOC_GET_SUBVOL_INFO = 0x81F8943C;

        /// <summary>Root item flag: the subvolume (snapshot) is read-only.</summary>
        internal const ulong BTRFS_ROOT_SUBVOL_RDONLY = 0x1;

        /// <summary>struct btrfs_ioctl_get_subvol_info_args, 504 bytes; only the fields used are declared.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 504)]
        internal unsafe struct BtrfsSubvolInfo
        {
            [FieldOffset(0)] public ulong TreeId;
            [FieldOffset(8)] public fixed byte Name[256];
            [FieldOffset(264)] public ulong ParentId;
            [FieldOffset(272)] public ulong DirId;
            [FieldOffset(280)] public ulong Generation;
            [FieldOffset(288)] public ulong Flags;
        }
    }
}
