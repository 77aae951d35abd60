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

        /// <summary>The first byte after the item, as a file offset (at most long.MaxValue: <see cref="ByteRange.EndOf"/>).</summary>
        internal long FileEnd => ByteRange.EndOf((long)FileOffset, (long)Math.Min(Length, long.MaxValue));

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
    /// One item of <see cref="BtrfsFileExtents.ReadInodes"/>: an inode's btrfs_inode_item (its size and
    /// whether it is a regular file) or one of its file extent items; other item types are not returned.
    /// </summary>
    internal readonly record struct BtrfsInodeExtentItem(ulong Inode, bool IsInodeItem, long Size, bool IsRegular, BtrfsFileExtentRecord Extent);

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

        /// <summary>
        /// The items of <paramref name="file"/> referencing data extents (regular or prealloc) that overlap
        /// [offset, offset + length), in file order. Items do not overlap, so only the nearest item before the
        /// offset can reach into the range: it is found in windows before the offset growing from 64 KiB (by 16
        /// each time one holds no item) to the file's start, and the range searched from there. (No fixed bound:
        /// a written extent covers at most 128 MiB, a preallocated one 256 MiB, and a hole item without no-holes
        /// any length; a review found the 256 MiB ones missed with a bound of 128 MiB.)
        /// Cost follows the range, not its offset (before: read from offset 0 for each extent piped in one by
        /// one, the square of their number). Holes and inline data are left out.
        /// </summary>
        internal static IEnumerable<BtrfsFileExtentRecord> DataOverlapping(OpenFile file, long offset, long length)
        {
            ArgumentNullException.ThrowIfNull(file);
            ulong start = (ulong)Math.Max(0, offset);
            ulong end = length > 0 && (ulong)length <= ulong.MaxValue - start ? start + (ulong)length : ulong.MaxValue;
            ulong from = start;
            for (ulong window = 64UL << 10; start > 0; window = window > ulong.MaxValue / 16 ? ulong.MaxValue : window * 16)
            {
                ulong low = start > window ? start - window : 0;
                BtrfsFileExtentRecord? before = null;
                foreach (BtrfsFileExtentRecord r in Items(file, low, start - 1))
                {
                    before = r;
                }

                if (before is BtrfsFileExtentRecord nearest)
                {
                    from = nearest.FileOffset;
                    break;
                }

                if (low == 0)
                {
                    break;
                }
            }

            foreach (BtrfsFileExtentRecord r in Items(file, from, end - 1))
            {
                if (r.IsDataExtent && r.FileOffset < end && r.FileOffset + r.Length > start)
                {
                    yield return r;
                }
            }
        }

        /// <summary>The file's items whose keys (file offsets) are in [first, last].</summary>
        private static IEnumerable<BtrfsFileExtentRecord> Items(OpenFile file, ulong first, ulong last) =>
            BtrfsSearch.Search(
                file,
                0,
                file.Status.Inode,
                file.Status.Inode,
                Libc.BTRFS_EXTENT_DATA_KEY,
                Libc.BTRFS_EXTENT_DATA_KEY,
                first,
                last,
                static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => BtrfsFileExtentRecord.Parse(h.Offset, d));

        /// <summary>
        /// The inode items and file extent items of the inodes <paramref name="first"/> to
        /// <paramref name="last"/> of the subvolume holding the directory <paramref name="directory"/>,
        /// in key order (an inode's item before its extents), in as few TREE_SEARCH_V2 calls as the
        /// buffer allows: many files without opening any. The other items of those inodes (names,
        /// extended attributes, directory entries) are skipped. btrfs only, root only; errors name
        /// <paramref name="path"/>.
        /// </summary>
        internal static IEnumerable<BtrfsInodeExtentItem> ReadInodes(SafeFileDescriptor directory, string path, ulong first, ulong last)
        {
            ArgumentNullException.ThrowIfNull(directory);
            foreach (BtrfsInodeExtentItem item in BtrfsSearch.Search(directory, path, 0, first, last, Libc.BTRFS_INODE_ITEM_KEY, Libc.BTRFS_EXTENT_DATA_KEY, 0, ulong.MaxValue, ParseInodeItem))
            {
                if (item.Inode != 0)
                {
                    yield return item;
                }
            }
        }

        /// <summary>An inode item or an extent item; anything else as the default (Inode 0), which <see cref="ReadInodes"/> drops.</summary>
        private static BtrfsInodeExtentItem ParseInodeItem(in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d)
        {
            if (h.Type == Libc.BTRFS_EXTENT_DATA_KEY)
            {
                return new BtrfsInodeExtentItem(h.ObjectId, false, 0, true, BtrfsFileExtentRecord.Parse(h.Offset, d));
            }

            if (h.Type == Libc.BTRFS_INODE_ITEM_KEY && d.Length >= InodeItemModeOffset + 4)
            {
                // btrfs_inode_item: generation, transid, size, nbytes, block_group (u64 each), nlink, uid, gid, mode (u32 each).
                long size = (long)BinaryPrimitives.ReadUInt64LittleEndian(d[InodeItemSizeOffset..]);
                uint mode = BinaryPrimitives.ReadUInt32LittleEndian(d[InodeItemModeOffset..]);
                return new BtrfsInodeExtentItem(h.ObjectId, true, size, (mode & 0xF000) == 0x8000, default);
            }

            return default;
        }

        private const int InodeItemSizeOffset = 16;
        private const int InodeItemModeOffset = 52;
    }
}
