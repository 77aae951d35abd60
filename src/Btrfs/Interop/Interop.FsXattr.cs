namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR (include/uapi/linux/fs.h, reference 3.4): the extended
    /// inode attributes xfs keeps (xflags such as realtime and no-defrag, extent size hints, project id).
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOR('X', 31, struct fsxattr).</summary>
        internal const uint FS_IOC_FSGETXATTR = 0x801C581F;

        /// <summary>_IOW('X', 32, struct fsxattr).</summary>
        internal const uint FS_IOC_FSSETXATTR = 0x401C5820;

        internal const uint FS_XFLAG_REALTIME = 0x00000001;
        internal const uint FS_XFLAG_IMMUTABLE = 0x00000008;
        internal const uint FS_XFLAG_APPEND = 0x00000010;
        internal const uint FS_XFLAG_NODEFRAG = 0x00002000;

        /// <summary>struct fsxattr, 28 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct FsXattr
        {
            public uint XFlags;
            public uint ExtSize;
            public uint NExtents;
            public uint ProjId;
            public uint CowExtSize;
            public fixed byte Pad[8];
        }
    }
}
