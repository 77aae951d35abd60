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

        /// <summary>_IOW(0x94, 16, struct btrfs_ioctl_defrag_range_args): rewrite a range; needs write permission (or CAP_SYS_ADMIN).</summary>
        internal const uint BTRFS_IOC_DEFRAG_RANGE = 0x40309410;

        internal const ulong BTRFS_DEFRAG_RANGE_COMPRESS = 1;
        internal const ulong BTRFS_DEFRAG_RANGE_START_IO = 2;

        /// <summary>Newer kernels: compress.level is used (older ones refuse the unknown flag with EOPNOTSUPP).</summary>
        internal const ulong BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL = 4;

        /// <summary>struct btrfs_ioctl_defrag_range_args, 48 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 48)]
        internal struct BtrfsDefragRangeArgs
        {
            [FieldOffset(0)] public ulong Start;
            [FieldOffset(8)] public ulong Length;
            [FieldOffset(16)] public ulong Flags;
            [FieldOffset(24)] public uint ExtentThreshold;

            /// <summary>compress_type (0 none/zlib default, 1 zlib, 2 lzo, 3 zstd); with COMPRESS_LEVEL its low byte is the type.</summary>
            [FieldOffset(28)] public uint CompressType;

            /// <summary>compress.level (signed), with COMPRESS_LEVEL.</summary>
            [FieldOffset(29)] public sbyte CompressLevel;
        }
    }
}
