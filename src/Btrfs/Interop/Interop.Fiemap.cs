namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>FS_IOC_FIEMAP (include/uapi/linux/fiemap.h).</summary>
    internal static partial class Libc
    {
        /// <summary>_IOWR('f', 11, struct fiemap) with sizeof(struct fiemap) = 32.</summary>
        internal const uint FS_IOC_FIEMAP = 0xC020660B;

        internal const uint FIEMAP_FLAG_SYNC = 0x1;
        internal const uint FIEMAP_FLAG_XATTR = 0x2;
        internal const uint FIEMAP_FLAG_CACHE = 0x4;

        internal const uint FIEMAP_EXTENT_LAST = 0x1;
        internal const uint FIEMAP_EXTENT_UNKNOWN = 0x2;
        internal const uint FIEMAP_EXTENT_DELALLOC = 0x4;
        internal const uint FIEMAP_EXTENT_ENCODED = 0x8;
        internal const uint FIEMAP_EXTENT_DATA_ENCRYPTED = 0x80;
        internal const uint FIEMAP_EXTENT_NOT_ALIGNED = 0x100;
        internal const uint FIEMAP_EXTENT_DATA_INLINE = 0x200;
        internal const uint FIEMAP_EXTENT_DATA_TAIL = 0x400;
        internal const uint FIEMAP_EXTENT_UNWRITTEN = 0x800;
        internal const uint FIEMAP_EXTENT_MERGED = 0x1000;
        internal const uint FIEMAP_EXTENT_SHARED = 0x2000;

        /// <summary>struct fiemap: the 32-byte header before fm_extents[].</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Fiemap
        {
            public ulong Start;          // fm_start
            public ulong Length;         // fm_length
            public uint Flags;           // fm_flags
            public uint MappedExtents;   // fm_mapped_extents
            public uint ExtentCount;     // fm_extent_count
            public uint Reserved;        // fm_reserved
        }

        /// <summary>struct fiemap_extent: 56 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct FiemapExtent
        {
            public ulong Logical;        // fe_logical
            public ulong Physical;       // fe_physical
            public ulong Length;         // fe_length
            public ulong Reserved64a;    // fe_reserved64[0]
            public ulong Reserved64b;    // fe_reserved64[1]
            public uint Flags;           // fe_flags
            public uint Reserved0;       // fe_reserved[0]
            public uint Reserved1;       // fe_reserved[1]
            public uint Reserved2;       // fe_reserved[2]
        }
    }
}
