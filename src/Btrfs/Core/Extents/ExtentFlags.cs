namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>FIEMAP_EXTENT_* flags (include/uapi/linux/fiemap.h), bit for bit.</summary>
    [Flags]
    public enum ExtentFlags : uint
    {
        /// <summary>No flag set.</summary>
        None = 0,

        /// <summary>FIEMAP_EXTENT_LAST: the last extent of the file.</summary>
        Last = 0x1,

        /// <summary>FIEMAP_EXTENT_UNKNOWN: the data location is not known yet.</summary>
        Unknown = 0x2,

        /// <summary>FIEMAP_EXTENT_DELALLOC: delayed allocation, not yet on disk (sets Unknown).</summary>
        Delalloc = 0x4,

        /// <summary>FIEMAP_EXTENT_ENCODED: the data is encoded (on btrfs: compressed).</summary>
        Encoded = 0x8,

        /// <summary>FIEMAP_EXTENT_DATA_ENCRYPTED: the data is encrypted (sets Encoded).</summary>
        DataEncrypted = 0x80,

        /// <summary>FIEMAP_EXTENT_NOT_ALIGNED: the extent offsets may not be block aligned.</summary>
        NotAligned = 0x100,

        /// <summary>FIEMAP_EXTENT_DATA_INLINE: the data is stored inline with the metadata (sets NotAligned).</summary>
        DataInline = 0x200,

        /// <summary>FIEMAP_EXTENT_DATA_TAIL: several files' tails packed in one block (sets NotAligned).</summary>
        DataTail = 0x400,

        /// <summary>FIEMAP_EXTENT_UNWRITTEN: allocated but not written (preallocated, reads as zeros).</summary>
        Unwritten = 0x800,

        /// <summary>FIEMAP_EXTENT_MERGED: the filesystem merged block-mapped ranges into this extent.</summary>
        Merged = 0x1000,

        /// <summary>FIEMAP_EXTENT_SHARED: the space may be shared with another file or snapshot (reflink).</summary>
        Shared = 0x2000,
    }
}
