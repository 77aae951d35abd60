namespace Btrfs.Kernel
{
    using System;
    using System.Buffers;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>One item of a btrfs tree, as BTRFS_IOC_TREE_SEARCH_V2 returns it (the data is packed little-endian).</summary>
    internal readonly record struct BtrfsItem(ulong ObjectId, uint Type, ulong Offset, ulong TransId, byte[] Data)
    {
        internal ulong U64(int at) => BinaryPrimitives.ReadUInt64LittleEndian(Data.AsSpan(at, 8));

        internal ushort U16(int at) => BinaryPrimitives.ReadUInt16LittleEndian(Data.AsSpan(at, 2));
    }

    /// <summary>
    /// Reads btrfs metadata: the filesystem-wide facts (FS_INFO, SPACE_INFO, no privilege needed) and
    /// tree items (TREE_SEARCH_V2, CAP_SYS_ADMIN), paging until the key range is exhausted with one
    /// fixed buffer.
    /// </summary>
    internal static class BtrfsSearch
    {
        private const int HeaderSize = 112; // key 104 + buf_size 8
        private const int ItemHeaderSize = 32;
        private const int BufferSize = 256 * 1024;

        /// <summary>No item is larger than a leaf, and leaves are at most 64 KiB (the largest nodesize).</summary>
        private const int MaxItemSize = 64 * 1024;

        /// <summary>FS_INFO: device count, sector size. Null when not btrfs.</summary>
        internal static unsafe Libc.BtrfsFsInfo? FileSystemInfo(OpenFile file)
        {
            Libc.BtrfsFsInfo info = default;
            return Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_FS_INFO, &info) < 0 ? null : info;
        }

        /// <summary>
        /// The filesystem's UUID (FS_INFO's fsid): one per btrfs filesystem, the same in each of its subvolumes (whose
        /// st_dev and statfs f_fsid differ). Null when not btrfs. No privilege needed.
        /// </summary>
        internal static unsafe Guid? FileSystemUuid(SafeFileDescriptor fd)
        {
            Libc.BtrfsFsInfo info = default;
            return Libc.Ioctl(fd, Libc.BTRFS_IOC_FS_INFO, &info) < 0 ? null : new Guid(new ReadOnlySpan<byte>(info.FsId, 16), bigEndian: true);
        }

        /// <summary>
        /// The btrfs exclusive operation under way on the filesystem (/sys/fs/btrfs/UUID/exclusive_operation, Linux 5.10+:
        /// "balance", "balance paused", "device add", "resize"...): while one is, the kernel refuses to activate a
        /// swapfile (EBUSY). Null when there is none, or it cannot be known (not btrfs, an older kernel, no sysfs).
        /// </summary>
        internal static string? ExclusiveOperation(SafeFileDescriptor fd)
        {
            if (FileSystemUuid(fd) is not Guid uuid)
            {
                return null;
            }

            try
            {
                string op = System.IO.File.ReadAllText($"/sys/fs/btrfs/{uuid:D}/exclusive_operation").Trim();
                return op.Length == 0 || op == "none" ? null : op;
            }
            catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>
        /// How btrfs checksums data (FS_INFO with BTRFS_FS_INFO_FLAG_CSUM_INFO): btrfs_csum_type (0 crc32c,
        /// 1 xxhash64, 2 sha256, 3 blake2b), the checksum's size in bytes and the sector size (one checksum per
        /// sector), and the node size (no checksum item is larger). Null when not btrfs, or when the kernel does
        /// not say (the flag came in 2020). No privilege needed.
        /// </summary>
        internal static unsafe (ushort Type, ushort Size, uint SectorSize, uint NodeSize)? ChecksumInfo(OpenFile file)
        {
            Libc.BtrfsFsInfo info = default;
            info.Flags = Libc.BTRFS_FS_INFO_FLAG_CSUM_INFO;
            return Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_FS_INFO, &info) < 0 || (info.Flags & Libc.BTRFS_FS_INFO_FLAG_CSUM_INFO) == 0
                ? null
                : (info.CsumType, info.CsumSize, info.SectorSize, info.NodeSize);
        }

        /// <summary>Whether this caller may search the trees (TREE_SEARCH needs CAP_SYS_ADMIN): one search of one key of the checksum tree.</summary>
        internal static bool CanSearch(OpenFile file)
        {
            try
            {
                DataChecksums(file, 0, 1, 0, static (_, _) => { });
                return true;
            }
            catch (FileOperationException)
            {
                return false;
            }
        }

        /// <summary>Receives one EXTENT_CSUM item: the disk address of its first sector and its checksums (one per sector, in order); the span is only valid during the call.</summary>
        internal delegate void ChecksumSink(ulong start, ReadOnlySpan<byte> sums);

        /// <summary>
        /// The data checksums btrfs keeps (the checksum tree) for disk addresses from <paramref name="start"/>
        /// up to <paramref name="end"/>: each EXTENT_CSUM item that may reach into them, in address order,
        /// handed to <paramref name="sink"/>. An item is keyed by its first sector, so items beginning up to
        /// <paramref name="lookBehind"/> bytes before <paramref name="start"/> are included (an item is never
        /// larger than a leaf). Sectors without a checksum (NOCOW, nodatasum, preallocated) have no item.
        /// Throws <see cref="FileOperationException"/> (AccessDenied without CAP_SYS_ADMIN).
        /// </summary>
        internal static void DataChecksums(OpenFile file, ulong start, ulong end, ulong lookBehind, ChecksumSink sink)
        {
            if (end <= start)
            {
                return;
            }

            foreach (int _ in Search(
                file,
                Libc.BTRFS_CSUM_TREE_OBJECTID,
                Libc.BTRFS_EXTENT_CSUM_OBJECTID,
                Libc.BTRFS_EXTENT_CSUM_OBJECTID,
                Libc.BTRFS_EXTENT_CSUM_KEY,
                Libc.BTRFS_EXTENT_CSUM_KEY,
                start > lookBehind ? start - lookBehind : 0,
                end - 1,
                (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) =>
                {
                    sink(h.Offset, d);
                    return 0;
                }))
            {
            }
        }

        /// <summary>The filesystem's id (FS_INFO fsid), which tells two filesystems apart; null when not btrfs.</summary>
        internal static unsafe Guid? FileSystemId(OpenFile file)
        {
            Libc.BtrfsFsInfo info = default;
            return Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_FS_INFO, &info) < 0 ? null : new Guid(new ReadOnlySpan<byte>(info.FsId, 16), bigEndian: true);
        }

        /// <summary>Bytes of metadata in use (SPACE_INFO, the metadata block groups' used bytes, once per copy not counted): an upper bound for the bytes of tree blocks to read.</summary>
        internal static unsafe ulong MetadataUsedBytes(OpenFile file)
        {
            ulong* head = stackalloc ulong[2];
            head[0] = 0;
            head[1] = 0;
            if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_SPACE_INFO, head) < 0)
            {
                return 0;
            }

            ulong total = head[1];
            byte[] buffer = new byte[16 + ((int)total * 24)];
            ulong used = 0;
            fixed (byte* p = buffer)
            {
                ((ulong*)p)[0] = total;
                if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_SPACE_INFO, p) < 0)
                {
                    return 0;
                }

                ulong got = Math.Min(((ulong*)p)[1], total);
                for (ulong i = 0; i < got; i++)
                {
                    ReadOnlySpan<byte> entry = buffer.AsSpan(16 + ((int)i * 24), 24);
                    ulong flags = BinaryPrimitives.ReadUInt64LittleEndian(entry);
                    if ((flags & Libc.BTRFS_BLOCK_GROUP_METADATA) != 0 && (flags & Libc.BTRFS_SPACE_INFO_GLOBAL_RSV) == 0)
                    {
                        used += BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]);
                    }
                }
            }

            return used;
        }

        /// <summary>SPACE_INFO: the block group type-and-profile flags in use (data, metadata, system; with their profiles).</summary>
        /// <summary>Every data block group has the single profile (no RAID, no DUP): from SPACE_INFO, which any user may read.</summary>
        internal static bool DataIsSingleProfile(OpenFile file) =>
            SpaceFlags(file).TrueForAll(f => (f & Libc.BTRFS_BLOCK_GROUP_DATA) == 0 || (f & Libc.BTRFS_SPACE_INFO_GLOBAL_RSV) != 0 || (f & Libc.BTRFS_BLOCK_GROUP_PROFILE_MASK) == 0);

        internal static unsafe List<ulong> SpaceFlags(OpenFile file)
        {
            var flags = new List<ulong>();
            ulong* head = stackalloc ulong[2];
            head[0] = 0;
            head[1] = 0;
            if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_SPACE_INFO, head) < 0)
            {
                throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "BTRFS_IOC_SPACE_INFO", file.Path, "Cannot read the space information of the filesystem of");
            }

            ulong total = head[1];
            byte[] buffer = new byte[16 + ((int)total * 24)];
            fixed (byte* p = buffer)
            {
                ((ulong*)p)[0] = total;
                if (Libc.Ioctl(file.Handle, Libc.BTRFS_IOC_SPACE_INFO, p) < 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "BTRFS_IOC_SPACE_INFO", file.Path, "Cannot read the space information of the filesystem of");
                }

                ulong got = ((ulong*)p)[1];
                for (ulong i = 0; i < Math.Min(got, total); i++)
                {
                    flags.Add(BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(16 + ((int)i * 24), 8)));
                }
            }

            return flags;
        }

        /// <summary>Turns one item of a search result into a value; the span is only valid during the call.</summary>
        internal delegate T ItemParser<T>(in Libc.BtrfsSearchHeader header, ReadOnlySpan<byte> data);

        /// <summary>
        /// Items with keys in [(minObjectId, minType, minOffset), (maxObjectId, maxType, maxOffset)] of
        /// tree <paramref name="treeId"/> (0: the subvolume of the file), each copied out. Throws
        /// <see cref="FileOperationException"/> (AccessDenied without CAP_SYS_ADMIN).
        /// </summary>
        internal static IEnumerable<BtrfsItem> Search(OpenFile file, ulong treeId, ulong minObjectId, ulong maxObjectId, uint minType, uint maxType, ulong minOffset = 0, ulong maxOffset = ulong.MaxValue) =>
            Search(file, treeId, minObjectId, maxObjectId, minType, maxType, minOffset, maxOffset, static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => new BtrfsItem(h.ObjectId, h.Type, h.Offset, h.TransId, d.ToArray()));

        /// <summary>
        /// As <see cref="Search(OpenFile, ulong, ulong, ulong, uint, uint, ulong, ulong)"/>, but each
        /// item is handed to <paramref name="parse"/> in place: nothing is allocated per item. One pooled
        /// buffer per enumeration, grown when the kernel says an item does not fit (EOVERFLOW).
        /// </summary>
        internal static IEnumerable<T> Search<T>(OpenFile file, ulong treeId, ulong minObjectId, ulong maxObjectId, uint minType, uint maxType, ulong minOffset, ulong maxOffset, ItemParser<T> parse) =>
            Search(file.Handle, file.Path, treeId, minObjectId, maxObjectId, minType, maxType, minOffset, maxOffset, parse);

        /// <summary>
        /// As <see cref="Search{T}(OpenFile, ulong, ulong, ulong, uint, uint, ulong, ulong, ItemParser{T})"/>
        /// through any descriptor on the filesystem (a directory: tree 0 is then the directory's subvolume),
        /// naming <paramref name="path"/> in errors.
        /// </summary>
        internal static IEnumerable<T> Search<T>(SafeFileDescriptor handle, string path, ulong treeId, ulong minObjectId, ulong maxObjectId, uint minType, uint maxType, ulong minOffset, ulong maxOffset, ItemParser<T> parse)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            var key = new Libc.BtrfsSearchKey
            {
                TreeId = treeId,
                MinObjectId = minObjectId,
                MaxObjectId = maxObjectId,
                MinType = minType,
                MaxType = maxType,
                MinOffset = minOffset,
                MaxOffset = maxOffset,
                MinTransId = 0,
                MaxTransId = ulong.MaxValue,
            };
            try
            {
                while (true)
                {
                    key.NrItems = uint.MaxValue;
                    int count = Fetch(handle, path, ref buffer, ref key);
                    if (count == 0)
                    {
                        yield break;
                    }

                    int at = HeaderSize;
                    Libc.BtrfsSearchHeader last = default;
                    for (int i = 0; i < count; i++)
                    {
                        yield return ParseAt(buffer, ref at, parse, out last);
                    }

                    // The kernel stops filling the buffer when the next item does not fit, or at the end of
                    // the key range. Room left for any item means the range is done: no second search
                    // (one tree descent per file instead of two).
                    if (buffer.Length - at >= ItemHeaderSize + MaxItemSize)
                    {
                        yield break;
                    }

                    // Continue after the last key returned (the key is one 136-bit number: objectid, type, offset).
                    if (last.Offset < ulong.MaxValue)
                    {
                        key.MinObjectId = last.ObjectId;
                        key.MinType = last.Type;
                        key.MinOffset = last.Offset + 1;
                    }
                    else if (last.Type < uint.MaxValue)
                    {
                        key.MinObjectId = last.ObjectId;
                        key.MinType = last.Type + 1;
                        key.MinOffset = 0;
                    }
                    else if (last.ObjectId < ulong.MaxValue)
                    {
                        key.MinObjectId = last.ObjectId + 1;
                        key.MinType = 0;
                        key.MinOffset = 0;
                    }
                    else
                    {
                        yield break;
                    }

                    if (key.MinObjectId > key.MaxObjectId)
                    {
                        yield break;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private static T ParseAt<T>(byte[] buffer, ref int at, ItemParser<T> parse, out Libc.BtrfsSearchHeader header)
        {
            header = MemoryMarshal.Read<Libc.BtrfsSearchHeader>(buffer.AsSpan(at, ItemHeaderSize));
            T value = parse(in header, buffer.AsSpan(at + ItemHeaderSize, (int)header.Length));
            at += ItemHeaderSize + (int)header.Length;
            return value;
        }

        private static unsafe int Fetch(SafeFileDescriptor handle, string path, ref byte[] buffer, ref Libc.BtrfsSearchKey key)
        {
            while (true)
            {
                MemoryMarshal.Write(buffer.AsSpan(0, 104), in key);
                BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(104, 8), (ulong)(buffer.Length - HeaderSize));
                int rc;
                int errno = 0;
                fixed (byte* p = buffer)
                {
                    rc = Libc.Ioctl(handle, Libc.BTRFS_IOC_TREE_SEARCH_V2, p);
                    if (rc < 0)
                    {
                        errno = Marshal.GetLastPInvokeError();
                    }
                }

                if (rc >= 0)
                {
                    key = MemoryMarshal.Read<Libc.BtrfsSearchKey>(buffer.AsSpan(0, 104));
                    return (int)key.NrItems;
                }

                // The next item is larger than the buffer: the kernel wrote the size it needs into buf_size.
                ulong needed = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(104, 8)) + HeaderSize;
                if (errno == Libc.EOVERFLOW && needed > (ulong)buffer.Length && needed <= Libc.BTRFS_INSPECT_MAX_BUFFER)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent((int)needed);
                    continue;
                }

                throw Failed(errno, "BTRFS_IOC_TREE_SEARCH_V2", path, "Cannot read the btrfs metadata of", "TREE_SEARCH");
            }
        }

        /// <summary>The advice for EPERM from an inspection ioctl.</summary>
        internal static string NeedsRoot(string what) =>
            $"Reading btrfs metadata ({what}) needs root (CAP_SYS_ADMIN): run this as root, for example with sudo.";

        /// <summary>
        /// The error of an inspection ioctl that the kernel allows root (CAP_SYS_ADMIN) only, whatever the file
        /// (TREE_SEARCH, LOGICAL_INO, INO_PATHS): EPERM (the kernel's capability check, the same for every file)
        /// says so, and marks it <see cref="FileOperationException.NeedsRoot"/>; EACCES (a security module, which
        /// may judge file by file) is this file's error only.
        /// </summary>
        internal static FileOperationException Failed(int errno, string operation, string path, string what, string name)
        {
            bool root = errno == Libc.EPERM;
            FileOperationException ex = FileOperationException.FromErrno(errno, operation, path, what, root ? NeedsRoot(name) : null);
            ex.NeedsRoot = root;
            return ex;
        }
    }

    /// <summary>A btrfs chunk: a range of logical addresses and where its stripes are.</summary>
    internal readonly record struct BtrfsChunk(ulong Logical, ulong Length, ulong Type, ulong[] DeviceIds, ulong[] DeviceOffsets)
    {
        internal ulong Profile => Type & Libc.BTRFS_BLOCK_GROUP_PROFILE_MASK;

        internal bool Contains(ulong logical) => logical >= Logical && logical - Logical < Length;

        /// <summary>The chunk map (chunk tree, root only): every chunk in logical order.</summary>
        internal static List<BtrfsChunk> ReadAll(OpenFile file)
        {
            var chunks = new List<BtrfsChunk>();
            foreach (BtrfsItem item in BtrfsSearch.Search(file, Libc.BTRFS_CHUNK_TREE_OBJECTID, Libc.BTRFS_FIRST_CHUNK_TREE_OBJECTID, Libc.BTRFS_FIRST_CHUNK_TREE_OBJECTID, Libc.BTRFS_CHUNK_ITEM_KEY, Libc.BTRFS_CHUNK_ITEM_KEY))
            {
                // struct btrfs_chunk: length 0, owner 8, stripe_len 16, type 24, ..., num_stripes 44 (u16), stripes from 48 (32 bytes each, devid first).
                int stripes = item.U16(44);
                var devices = new ulong[stripes];
                var offsets = new ulong[stripes];
                for (int i = 0; i < stripes; i++)
                {
                    devices[i] = item.U64(48 + (i * 32));
                    offsets[i] = item.U64(48 + (i * 32) + 8);
                }

                chunks.Add(new BtrfsChunk(item.Offset, item.U64(0), item.U64(24), devices, offsets));
            }

            return chunks;
        }
    }
}
