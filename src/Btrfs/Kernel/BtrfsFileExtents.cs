namespace Btrfs.Kernel
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// One btrfs_file_extent_item as read from the tree (reference 3.8): the key's file offset and
    /// the item's fields. For inline items <see cref="InlineLength"/> is the bytes stored in the item
    /// and the disk fields are 0.
    /// </summary>
    internal readonly record struct BtrfsFileExtentRecord(
        ulong FileOffset,
        ulong Generation,
        ulong RamBytes,
        byte Compression,
        BtrfsExtentType Type,
        ulong DiskBytenr,
        ulong DiskNumBytes,
        ulong ExtentOffset,
        ulong NumBytes,
        uint InlineLength)
    {
        /// <summary>Inline data (stored in the metadata item).</summary>
        public bool IsInline => Type == BtrfsExtentType.Inline;

        /// <summary>An explicit hole item.</summary>
        public bool IsHole => !IsInline && DiskBytenr == 0;

        /// <summary>A reference to a data extent on disk (regular or prealloc, not a hole).</summary>
        public bool IsDataExtent => !IsInline && DiskBytenr != 0;

        /// <summary>Bytes of the file the item covers: num_bytes, or for inline data its decompressed length.</summary>
        public ulong Length => IsInline ? RamBytes : NumBytes;

        /// <summary>The item references only part of its data extent (a bookend).</summary>
        public bool IsPartialReference => IsDataExtent && (ExtentOffset != 0 || NumBytes != RamBytes);

        /// <summary>Parses the item data of an EXTENT_DATA key.</summary>
        internal static BtrfsFileExtentRecord Parse(ulong fileOffset, ReadOnlySpan<byte> d)
        {
            if (d.Length < Libc.FileExtentInlineHeaderSize)
            {
                throw new InvalidOperationException($"A btrfs file extent item of {d.Length} bytes is shorter than its {Libc.FileExtentInlineHeaderSize}-byte header.");
            }

            ulong generation = BinaryPrimitives.ReadUInt64LittleEndian(d);
            ulong ram = BinaryPrimitives.ReadUInt64LittleEndian(d[8..]);
            byte compression = d[16];
            byte type = d[20];
            if (type == Libc.BTRFS_FILE_EXTENT_INLINE)
            {
                return new BtrfsFileExtentRecord(fileOffset, generation, ram, compression, (BtrfsExtentType)type, 0, 0, 0, 0, (uint)(d.Length - Libc.FileExtentInlineHeaderSize));
            }

            if (d.Length < Libc.FileExtentItemSize)
            {
                throw new InvalidOperationException($"A btrfs file extent item of type {type} has {d.Length} bytes, not {Libc.FileExtentItemSize}.");
            }

            return new BtrfsFileExtentRecord(
                fileOffset,
                generation,
                ram,
                compression,
                (BtrfsExtentType)type,
                BinaryPrimitives.ReadUInt64LittleEndian(d[21..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[29..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[37..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[45..]),
                0);
        }
    }

    /// <summary>
    /// Reads a file's EXTENT_DATA items from its subvolume tree with TREE_SEARCH_V2 (as compsize
    /// does), paging until they end; nothing is kept between items. btrfs only, root only.
    /// </summary>
    internal static class BtrfsFileExtents
    {
        /// <summary>
        /// The file's items in file order (a btrfs file: callers check, see BtrfsOnly). Throws
        /// <see cref="FileOperationException"/>: AccessDenied without CAP_SYS_ADMIN.
        /// </summary>
        internal static IEnumerable<BtrfsFileExtentRecord> Read(OpenFile file)
        {
            ArgumentNullException.ThrowIfNull(file);
            return BtrfsSearch.Search(
                file,
                0,
                file.Status.Inode,
                file.Status.Inode,
                Libc.BTRFS_EXTENT_DATA_KEY,
                Libc.BTRFS_EXTENT_DATA_KEY,
                0,
                ulong.MaxValue,
                static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => BtrfsFileExtentRecord.Parse(h.Offset, d));
        }

        /// <summary>
        /// The items of <paramref name="file"/> that overlap [offset, offset + length), numbered by
        /// their position among all the file's items.
        /// </summary>
        internal static IEnumerable<(long Index, BtrfsFileExtentRecord Item)> Overlapping(OpenFile file, long offset, long? length)
        {
            ulong start = (ulong)Math.Max(0, offset);
            ulong end = length is long l ? start + (ulong)l : ulong.MaxValue;
            long index = 0;
            foreach (BtrfsFileExtentRecord r in Read(file))
            {
                long i = index++;
                if (r.FileOffset >= end)
                {
                    yield break;
                }

                if (r.FileOffset + Math.Max(1UL, r.Length) > start)
                {
                    yield return (i, r);
                }
            }
        }
    }
}
