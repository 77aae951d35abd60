namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>How the data of a btrfs extent is compressed (btrfs_file_extent_item.compression).</summary>
    public enum BtrfsCompression
    {
        /// <summary>Not compressed.</summary>
        None = 0,

        /// <summary>zlib.</summary>
        Zlib = 1,

        /// <summary>LZO.</summary>
        Lzo = 2,

        /// <summary>Zstandard.</summary>
        Zstd = 3,
    }

    /// <summary>The kind of a btrfs file extent item (btrfs_file_extent_item.type).</summary>
    public enum BtrfsExtentType
    {
        /// <summary>The data is stored in the item itself, in the metadata tree.</summary>
        Inline = 0,

        /// <summary>A reference to (part of) a data extent; DiskAddress 0 is an explicit hole.</summary>
        Regular = 1,

        /// <summary>Preallocated (fallocate) space not written yet: reads as zeros.</summary>
        Prealloc = 2,
    }

    /// <summary>
    /// One EXTENT_DATA item of a file in its btrfs subvolume tree, exactly as stored: not merged with
    /// its neighbours (as FIEMAP does) and with the fields FIEMAP does not show.
    /// </summary>
    public sealed class BtrfsExtentItem
    {
        /// <summary>Creates an item record.</summary>
        internal BtrfsExtentItem(string path, long index, in BtrfsFileExtentRecord r)
        {
            Path = path;
            Index = index;
            LogicalOffset = (long)r.FileOffset;
            Length = (long)r.Length;
            DiskAddress = (long)r.DiskBytenr;
            DiskLength = r.IsInline ? r.InlineLength : (long)r.DiskNumBytes;
            ExtentOffset = (long)r.ExtentOffset;
            UncompressedLength = (long)r.RamBytes;
            Compression = (BtrfsCompression)r.Compression;
            Type = r.Type;
            Generation = (long)r.Generation;
            IsBookend = r.IsPartialReference;
        }

        /// <summary>The file's path.</summary>
        public string Path { get; }

        /// <summary>0-based position of the item among all EXTENT_DATA items of the file.</summary>
        public long Index { get; }

        /// <summary>Byte offset in the file where this item starts (the item key's offset).</summary>
        public long LogicalOffset { get; }

        /// <summary>Bytes of the file this item covers (num_bytes; for inline items the data length, ram_bytes).</summary>
        public long Length { get; }

        /// <summary>LogicalOffset + Length: the first byte after the item (at most long.MaxValue, the largest file size).</summary>
        public long EndOffset => Btrfs.Kernel.ByteRange.EndOf(LogicalOffset, Length);

        /// <summary>btrfs logical address of the data extent (disk_bytenr); 0 for a hole item and for inline data.</summary>
        public long DiskAddress { get; }

        /// <summary>Bytes the whole data extent takes on disk (disk_num_bytes: the compressed size); for inline data the bytes stored in the item.</summary>
        public long DiskLength { get; }

        /// <summary>Where in the (uncompressed) data extent this item's bytes start (offset).</summary>
        public long ExtentOffset { get; }

        /// <summary>Size of the whole data extent when uncompressed (ram_bytes).</summary>
        public long UncompressedLength { get; }

        /// <summary>How the extent is compressed.</summary>
        public BtrfsCompression Compression { get; }

        /// <summary>Inline, Regular or Prealloc.</summary>
        public BtrfsExtentType Type { get; }

        /// <summary>The transaction that created the data extent.</summary>
        public long Generation { get; }

        /// <summary>An explicit hole item (Regular with DiskAddress 0; only on filesystems without the no-holes feature).</summary>
        public bool IsHole => Type != BtrfsExtentType.Inline && DiskAddress == 0;

        /// <summary>The item references only part of its data extent: the rest is kept on disk for other references or wasted ("bookend").</summary>
        public bool IsBookend { get; }

        /// <summary>The data is compressed.</summary>
        public bool IsCompressed => Compression != BtrfsCompression.None;
    }
}
