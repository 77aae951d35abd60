namespace Btrfs.Kernel
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.Numerics;
    using System.Runtime.InteropServices;
    using System.Security.Cryptography;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>A btrfs key: (objectid, type, offset), ordered in that order.</summary>
    internal readonly record struct BtrfsKey(ulong ObjectId, byte Type, ulong Offset) : IComparable<BtrfsKey>
    {
        internal static BtrfsKey Read(ReadOnlySpan<byte> at) =>
            new(BinaryPrimitives.ReadUInt64LittleEndian(at), at[8], BinaryPrimitives.ReadUInt64LittleEndian(at[9..]));

        public int CompareTo(BtrfsKey other)
        {
            int c = ObjectId.CompareTo(other.ObjectId);
            if (c == 0)
            {
                c = Type.CompareTo(other.Type);
            }

            return c != 0 ? c : Offset.CompareTo(other.Offset);
        }
    }

    /// <summary>A subvolume's root item as the root tree holds it: where its tree starts, and for one deleted but not yet cleaned (refs 0) how far the cleaner got.</summary>
    internal readonly record struct BtrfsDiskRoot(ulong Id, ulong ByteNr, ulong Generation, int Level, uint Refs, BtrfsKey DropProgress, ulong KeyOffset);

    /// <summary>What the superblock of the last commit says (the fields used here).</summary>
    internal readonly record struct BtrfsSuperblock(ulong Generation, ulong RootTree, byte RootLevel, uint NodeSize, ushort CsumType, Guid MetadataFsId);

    /// <summary>
    /// A tree block as it is on disk, checked, viewed in place: a node (level &gt; 0: key pointers to
    /// children) or a leaf (items). The span is only valid until the next read of the same reader.
    /// </summary>
    internal readonly ref struct BtrfsTreeBlock
    {
        internal const int HeaderSize = 101;
        private const int KeyPtrSize = 33;
        private const int ItemSize = 25;
        private readonly ReadOnlySpan<byte> block;

        internal BtrfsTreeBlock(ReadOnlySpan<byte> block) => this.block = block;

        internal ulong ByteNr => BinaryPrimitives.ReadUInt64LittleEndian(block[48..]);

        internal ulong Generation => BinaryPrimitives.ReadUInt64LittleEndian(block[80..]);

        internal ulong Owner => BinaryPrimitives.ReadUInt64LittleEndian(block[88..]);

        internal int Count => (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(block[96..]), int.MaxValue);

        internal int Level => block[100];

        /// <summary>A node's pointer <paramref name="i"/>: the first key below it, the child's address and the generation it must have.</summary>
        internal (BtrfsKey Key, ulong ByteNr, ulong Generation) Pointer(int i)
        {
            ReadOnlySpan<byte> p = block.Slice(HeaderSize + (i * KeyPtrSize), KeyPtrSize);
            return (BtrfsKey.Read(p), BinaryPrimitives.ReadUInt64LittleEndian(p[17..]), BinaryPrimitives.ReadUInt64LittleEndian(p[25..]));
        }

        /// <summary>A leaf's item <paramref name="i"/>: its key and its data.</summary>
        internal BtrfsKey ItemKey(int i) => BtrfsKey.Read(block.Slice(HeaderSize + (i * ItemSize), 17));

        internal ReadOnlySpan<byte> ItemData(int i)
        {
            ReadOnlySpan<byte> item = block.Slice(HeaderSize + (i * ItemSize), ItemSize);
            int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(item[17..]);
            int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(item[21..]);
            return block.Slice(HeaderSize + offset, size);
        }

        /// <summary>
        /// Item <paramref name="i"/> as a file extent item that points at a data extent (regular or
        /// preallocated, not a hole): the extent's address and its size on disk (compressed size).
        /// </summary>
        internal bool TryDataExtent(int i, out ulong diskByteNr, out ulong diskBytes)
        {
            diskByteNr = diskBytes = 0;
            if (ItemKey(i).Type != Libc.BTRFS_EXTENT_DATA_KEY)
            {
                return false;
            }

            // struct btrfs_file_extent_item: type at 20 (0 inline, 1 regular, 2 prealloc), disk_bytenr 21, disk_num_bytes 29.
            ReadOnlySpan<byte> item = ItemData(i);
            if (item.Length < 53 || item[20] == 0)
            {
                return false;
            }

            diskByteNr = BinaryPrimitives.ReadUInt64LittleEndian(item[21..]);
            diskBytes = BinaryPrimitives.ReadUInt64LittleEndian(item[29..]);
            return diskByteNr != 0;
        }

        /// <summary>Item <paramref name="i"/> as the root item of a subvolume (5, or 256 and up); false for any other item.</summary>
        internal bool TrySubvolumeRoot(int i, out BtrfsDiskRoot root)
        {
            root = default;
            BtrfsKey key = ItemKey(i);
            bool subvolume = key.ObjectId == Libc.BTRFS_FS_TREE_OBJECTID || (key.ObjectId >= Libc.BTRFS_FIRST_FREE_OBJECTID && key.ObjectId <= Libc.BTRFS_LAST_FREE_OBJECTID);
            ReadOnlySpan<byte> d = ItemData(i);
            if (key.Type != Libc.BTRFS_ROOT_ITEM_KEY || !subvolume || d.Length < 239)
            {
                return false;
            }

            // struct btrfs_root_item: generation 160, bytenr 176, refs 216, drop_progress 220 (a key), drop_level 237, level 238.
            root = new BtrfsDiskRoot(
                key.ObjectId,
                BinaryPrimitives.ReadUInt64LittleEndian(d[176..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[160..]),
                d[238],
                BinaryPrimitives.ReadUInt32LittleEndian(d[216..]),
                BtrfsKey.Read(d[220..]),
                key.Offset);
            return true;
        }

        /// <summary>Whether the counts fit the block (a block that passed its checksum always does; this keeps a bad one from reading out of range).</summary>
        internal bool IsWellFormed
        {
            get
            {
                long room = block.Length - HeaderSize;
                if (BinaryPrimitives.ReadUInt32LittleEndian(block[96..]) > room)
                {
                    return false;
                }

                if (Level > 0)
                {
                    return (long)Count * KeyPtrSize <= room;
                }

                if ((long)Count * ItemSize > room)
                {
                    return false;
                }

                for (int i = 0; i < Count; i++)
                {
                    ReadOnlySpan<byte> item = block.Slice(HeaderSize + (i * ItemSize), ItemSize);
                    long offset = BinaryPrimitives.ReadUInt32LittleEndian(item[17..]);
                    long size = BinaryPrimitives.ReadUInt32LittleEndian(item[21..]);
                    if (offset + size > room)
                    {
                        return false;
                    }
                }

                return true;
            }
        }
    }

    /// <summary>
    /// Reads a mounted btrfs's committed metadata from its block devices, read-only and past the page
    /// cache (O_DIRECT), never through the mounted filesystem: the superblock of the last commit, and
    /// tree blocks by logical address through the chunk map, each checked (checksum, filesystem id,
    /// address, generation, level) before it is used; a mirror that fails is followed by the next.
    /// Root only (the devices and the chunk tree search need it). Checksums: crc32c, xxhash64 and sha256.
    /// </summary>
    internal sealed unsafe class BtrfsDisk : IDisposable
    {
        private const long SuperblockOffset = 64 * 1024;
        private const int SuperblockSize = 4096;
        private const ulong Magic = 0x4D5F53665248425F; // "_BHRfS_M"
        private const ulong IncompatMetadataUuid = 1UL << 10;
        private const ulong Raid0 = 1UL << 3, Raid10 = 1UL << 6, Raid5 = 1UL << 7, Raid6 = 1UL << 8;

        private readonly Dictionary<ulong, SafeFileDescriptor> devices;
        private readonly List<Chunk> chunks;
        private readonly string path;
        private readonly Guid fsid;

        /// <summary>Each device's own fsid, where DEV_INFO gives one that is not the filesystem's: a seed device (btrfstune -S 1) under a sprout.</summary>
        private readonly Dictionary<ulong, Guid> seeds;
        private AlignedBuffer? buffer;

        private BtrfsDisk(string path, Guid fsid, Dictionary<ulong, SafeFileDescriptor> devices, Dictionary<ulong, Guid> seeds, List<Chunk> chunks)
        {
            this.path = path;
            this.fsid = fsid;
            this.devices = devices;
            this.seeds = seeds;
            this.chunks = chunks;
        }

        /// <summary>Blocks read from the devices so far (mirrors tried included).</summary>
        internal long BlocksRead { get; private set; }

        /// <summary>The name the kernel gives a device that is missing (btrfs_dev_name; a degraded mount): not a path (before: opened as one, and a degraded filesystem could not be measured; a hostile review).</summary>
        private const string MissingDevice = "<missing disk>";

        /// <summary>
        /// Opens the devices of the btrfs holding <paramref name="anyOnFileSystem"/> (DEV_INFO for each
        /// device id) and reads its chunk map (chunk tree search). Root only.
        /// </summary>
        internal static BtrfsDisk Open(SafeFileDescriptor anyOnFileSystem, string path)
        {
            Libc.BtrfsFsInfo info = default;
            Errno.Check(Libc.Ioctl(anyOnFileSystem, Libc.BTRFS_IOC_FS_INFO, &info) < 0 ? -1 : 0, "BTRFS_IOC_FS_INFO", path, "Cannot read the filesystem facts of");
            var devices = new Dictionary<ulong, SafeFileDescriptor>();
            var seeds = new Dictionary<ulong, Guid>();
            var own = new Guid(new ReadOnlySpan<byte>(info.FsId, 16), bigEndian: true);
            try
            {
                for (ulong id = 1; id <= info.MaxId; id++)
                {
                    Libc.BtrfsDevInfo dev = default;
                    dev.DevId = id;
                    if (Libc.Ioctl(anyOnFileSystem, Libc.BTRFS_IOC_DEV_INFO, &dev) < 0)
                    {
                        int errno = Errno.Last;
                        if (errno == Errno.ENODEV)
                        {
                            continue; // a gap in the device ids (a device was removed)
                        }

                        throw FileOperationException.FromErrno(errno, "BTRFS_IOC_DEV_INFO", path, "Cannot find the devices of the filesystem of", errno is Errno.EPERM or Errno.EACCES ? BtrfsSearch.NeedsRoot("DEV_INFO") : null);
                    }

                    string device = Marshal.PtrToStringUTF8((nint)dev.Path) ?? string.Empty;
                    if (device.Length == 0 || device == MissingDevice)
                    {
                        continue; // missing (a degraded mount): its mirrors are read instead
                    }

                    SafeFileDescriptor fd = Libc.Open(device, Libc.O_RDONLY | Libc.O_DIRECT | Libc.O_CLOEXEC, 0);
                    if (fd.IsInvalid)
                    {
                        int errno = Errno.Last;
                        fd.Dispose();
                        throw FileOperationException.FromErrno(errno, "open", device, $"Cannot read device {id} of the filesystem of '{path}':", errno is Errno.EPERM or Errno.EACCES ? "Reading a filesystem's devices needs root." : "A device that is missing or renamed cannot be read: check `btrfs filesystem show`.");
                    }

                    devices[id] = fd;
                    var deviceFsId = new Guid(new ReadOnlySpan<byte>(dev.FsId, 16), bigEndian: true);
                    if (deviceFsId != Guid.Empty && deviceFsId != own)
                    {
                        seeds[id] = deviceFsId;
                    }
                }

                return new BtrfsDisk(path, own, devices, seeds, ReadChunks(anyOnFileSystem, path));
            }
            catch
            {
                foreach (SafeFileDescriptor fd in devices.Values)
                {
                    fd.Dispose();
                }

                throw;
            }
        }

        /// <summary>
        /// The superblock of the last commit, from the first device whose copy passes its checks (magic,
        /// address, checksum) and proves the device is this filesystem's (its fsid is FS_INFO's, its
        /// device id the one DEV_INFO gave for it): a device name reused by another disk is not read. A seed
        /// device under a sprout is proven by the fsid DEV_INFO gives for it, and not taken: its superblock is
        /// the seed's, from before the sprout was made.
        /// </summary>
        internal BtrfsSuperblock ReadSuperblock()
        {
            string? why = null;
            foreach ((ulong id, SafeFileDescriptor fd) in devices)
            {
                if (!TryRead(fd, SuperblockOffset, SuperblockSize, out ReadOnlySpan<byte> sb, out int errno))
                {
                    why = $"the superblock of device {id} cannot be read ({Errno.Name(errno)})";
                    continue;
                }

                ushort csumType = BinaryPrimitives.ReadUInt16LittleEndian(sb[196..]);
                if (BinaryPrimitives.ReadUInt64LittleEndian(sb[64..]) != Magic || BinaryPrimitives.ReadUInt64LittleEndian(sb[48..]) != SuperblockOffset)
                {
                    why = $"device {id} holds no btrfs superblock";
                    continue;
                }

                if (!ChecksumMatches(sb, csumType, out string? unsupported))
                {
                    if (unsupported is not null)
                    {
                        throw new FileOperationException(FileErrorKind.NotSupported, 0, "read", path, $"Cannot read the metadata of the filesystem of '{path}': {unsupported}.");
                    }

                    why = $"the superblock of device {id} fails its checksum";
                    continue;
                }

                // dev_item (at 201) starts with the device id.
                if (new Guid(sb.Slice(32, 16), bigEndian: true) != (seeds.TryGetValue(id, out Guid seed) ? seed : fsid) || BinaryPrimitives.ReadUInt64LittleEndian(sb[201..]) != id)
                {
                    throw new FileOperationException(FileErrorKind.IOError, 0, "read", path, $"Cannot read the metadata of the filesystem of '{path}': the device the kernel names as its device {id} holds another filesystem (or another device) now. Nothing was read from it.");
                }

                if (seeds.ContainsKey(id))
                {
                    why = $"only its seed device {id} could be read";
                    continue;
                }

                uint nodeSize = BinaryPrimitives.ReadUInt32LittleEndian(sb[148..]);
                byte rootLevel = sb[198];
                if (nodeSize < 4096 || nodeSize > 65536 || !BitOperations.IsPow2(nodeSize) || rootLevel >= 8)
                {
                    why = $"the superblock of device {id} gives an impossible node size ({nodeSize}) or tree level ({rootLevel})";
                    continue;
                }

                ulong incompat = BinaryPrimitives.ReadUInt64LittleEndian(sb[188..]);
                ReadOnlySpan<byte> metadataFsId = (incompat & IncompatMetadataUuid) != 0 ? sb.Slice(571, 16) : sb.Slice(32, 16);
                return new BtrfsSuperblock(
                    BinaryPrimitives.ReadUInt64LittleEndian(sb[72..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(sb[80..]),
                    rootLevel,
                    nodeSize,
                    csumType,
                    new Guid(metadataFsId, bigEndian: true));
            }

            throw Corrupt(why ?? "none of its devices can be read");
        }

        /// <summary>
        /// Reads the tree block at logical address <paramref name="logical"/> and checks it against what
        /// its parent (or the root item) says: its address, <paramref name="generation"/>,
        /// <paramref name="level"/>, the filesystem id and its checksum; each mirror is tried. False (with
        /// <paramref name="why"/>) when no copy passes: the filesystem moved on since the commit (the
        /// block was reused), or the copy is damaged.
        /// </summary>
        internal bool TryReadBlock(in BtrfsSuperblock sb, ulong logical, ulong generation, int level, out BtrfsTreeBlock found, out string why)
        {
            found = default;
            why = $"no chunk maps address {logical}";
            if (FindChunk(logical) is not Chunk chunk)
            {
                return false;
            }

            if (chunk.IsParityRaid)
            {
                throw new FileOperationException(FileErrorKind.NotSupported, 0, "read", path, $"Cannot read the metadata of the filesystem of '{path}': it is on RAID5/RAID6, which cannot be read here yet.");
            }

            foreach ((ulong devid, long physical) in chunk.Locate(logical))
            {
                if (!devices.TryGetValue(devid, out SafeFileDescriptor? fd))
                {
                    why = $"device {devid} is not present";
                    continue;
                }

                if (!TryRead(fd, physical, (int)sb.NodeSize, out ReadOnlySpan<byte> data, out int errno))
                {
                    why = $"the copy on device {devid} at {physical} cannot be read ({Errno.Name(errno)})";
                    continue;
                }

                BlocksRead++;
                var block = new BtrfsTreeBlock(data);
                if (!ChecksumMatches(data, sb.CsumType, out string? unsupported))
                {
                    if (unsupported is not null)
                    {
                        throw new FileOperationException(FileErrorKind.NotSupported, 0, "read", path, $"Cannot read the metadata of the filesystem of '{path}': {unsupported}.");
                    }

                    why = $"the copy on device {devid} at {physical} fails its checksum";
                    continue;
                }

                // A block written before the filesystem was sprouted from a seed carries the seed's fsid (as the kernel's check_tree_block_fsid allows).
                var blockFsId = new Guid(data.Slice(32, 16), bigEndian: true);
                if ((blockFsId != sb.MetadataFsId && !seeds.ContainsValue(blockFsId)) || block.ByteNr != logical || block.Generation != generation || block.Level != level || !block.IsWellFormed)
                {
                    why = $"the block at {logical} is not the one the commit points to (generation {block.Generation}, level {block.Level}; expected {generation}, {level})";
                    continue;
                }

                found = block;
                return true;
            }

            return false;
        }

        public void Dispose()
        {
            foreach (SafeFileDescriptor fd in devices.Values)
            {
                fd.Dispose();
            }

            devices.Clear();
            buffer?.Dispose();
            buffer = null;
        }

        /// <summary>Reads <paramref name="size"/> bytes at <paramref name="offset"/> into the aligned buffer; false with the errno (EIO, or ENXIO past the end) when they cannot be read.</summary>
        private bool TryRead(SafeFileDescriptor fd, long offset, int size, out ReadOnlySpan<byte> data, out int errno)
        {
            data = default;
            errno = 0;
            if (buffer is null || buffer.Length < size)
            {
                buffer?.Dispose();
                buffer = null;
                buffer = new AlignedBuffer(size);
            }

            byte* at = buffer.Pointer;

            int done = 0;
            while (done < size)
            {
                nint n = Libc.PRead(fd, at + done, (nuint)(size - done), offset + done);
                if (n < 0)
                {
                    errno = Errno.Last;
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }

                    return false;
                }

                if (n == 0)
                {
                    errno = Errno.ENXIO;
                    return false;
                }

                done += (int)n;
            }

            data = new ReadOnlySpan<byte>(at, size);
            return true;
        }

        private FileOperationException Corrupt(string what) =>
            new(FileErrorKind.IOError, 0, "read", path, $"Cannot read the metadata of the filesystem of '{path}': {what}. Check the filesystem (dmesg, btrfs device stats, btrfs scrub).");

        /// <summary>Checks the block's checksum (of bytes 32 onwards, stored in the first bytes). False with <paramref name="unsupported"/> set for a checksum type not supported here.</summary>
        private static bool ChecksumMatches(ReadOnlySpan<byte> block, ushort type, out string? unsupported)
        {
            unsupported = null;
            ReadOnlySpan<byte> data = block[32..];
            switch (type)
            {
                case 0: // crc32c
                    return BinaryPrimitives.ReadUInt32LittleEndian(block) == Crc32C(data);
                case 1: // xxhash64 (seed 0), stored little-endian as the kernel's crypto API gives it
                    return BinaryPrimitives.ReadUInt64LittleEndian(block) == System.IO.Hashing.XxHash64.HashToUInt64(data);
                case 2: // sha256
                    Span<byte> hash = stackalloc byte[32];
                    SHA256.HashData(data, hash);
                    return hash.SequenceEqual(block[..32]);
                default:
                    unsupported = $"its metadata checksum ({(type == 3 ? "blake2b" : "type " + type)}) is not supported yet; crc32c (the default), xxhash64 and sha256 are";
                    return false;
            }
        }

        /// <summary>CRC-32C (Castagnoli) as btrfs computes it: seed ~0, inverted at the end; hardware instructions where the CPU has them.</summary>
        internal static uint Crc32C(ReadOnlySpan<byte> data)
        {
            uint crc = 0xFFFFFFFF;
            while (data.Length >= 8)
            {
                crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }

            foreach (byte b in data)
            {
                crc = BitOperations.Crc32C(crc, b);
            }

            return ~crc;
        }

        private Chunk? FindChunk(ulong logical)
        {
            int lo = 0, hi = chunks.Count - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                Chunk c = chunks[mid];
                if (logical < c.Logical)
                {
                    hi = mid - 1;
                }
                else if (logical - c.Logical >= c.Length)
                {
                    lo = mid + 1;
                }
                else
                {
                    return c;
                }
            }

            return null;
        }

        private static List<Chunk> ReadChunks(SafeFileDescriptor fd, string path)
        {
            var chunks = new List<Chunk>();
            foreach (Chunk c in BtrfsSearch.Search(
                fd,
                path,
                Libc.BTRFS_CHUNK_TREE_OBJECTID,
                Libc.BTRFS_FIRST_CHUNK_TREE_OBJECTID,
                Libc.BTRFS_FIRST_CHUNK_TREE_OBJECTID,
                Libc.BTRFS_CHUNK_ITEM_KEY,
                Libc.BTRFS_CHUNK_ITEM_KEY,
                0,
                ulong.MaxValue,
                static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) =>
                {
                    // struct btrfs_chunk: length 0, owner 8, stripe_len 16, type 24, ..., num_stripes 44, sub_stripes 46, stripes from 48 (devid 0, offset 8; 32 bytes each).
                    int n = BinaryPrimitives.ReadUInt16LittleEndian(d[44..]);
                    var stripes = new (ulong, long)[n];
                    for (int i = 0; i < n; i++)
                    {
                        stripes[i] = (BinaryPrimitives.ReadUInt64LittleEndian(d[(48 + (i * 32))..]), (long)BinaryPrimitives.ReadUInt64LittleEndian(d[(56 + (i * 32))..]));
                    }

                    return new Chunk(h.Offset, BinaryPrimitives.ReadUInt64LittleEndian(d), BinaryPrimitives.ReadUInt64LittleEndian(d[16..]), BinaryPrimitives.ReadUInt64LittleEndian(d[24..]), BinaryPrimitives.ReadUInt16LittleEndian(d[46..]), stripes);
                }))
            {
                chunks.Add(c);
            }

            chunks.Sort((a, b) => a.Logical.CompareTo(b.Logical));
            return chunks;
        }

        /// <summary>A chunk: logical range, profile, and its stripes (device id, physical offset).</summary>
        private sealed record Chunk(ulong Logical, ulong Length, ulong StripeLength, ulong Type, int SubStripes, (ulong DevId, long Offset)[] Stripes)
        {
            /// <summary>RAID5 or RAID6: data and parity rotate over the devices (not read here).</summary>
            internal bool IsParityRaid => (Type & (Raid5 | Raid6)) != 0;

            /// <summary>Where the bytes at <paramref name="logical"/> are, every copy (one per mirror).</summary>
            internal IEnumerable<(ulong DevId, long Physical)> Locate(ulong logical)
            {
                ulong offset = logical - Logical;
                if ((Type & (Raid0 | Raid10)) != 0)
                {
                    ulong stripeNr = offset / StripeLength;
                    ulong within = offset % StripeLength;
                    int copies = (Type & Raid10) != 0 ? Math.Max(1, SubStripes) : 1;
                    ulong groups = (ulong)(Stripes.Length / copies);
                    if (groups == 0 || StripeLength == 0)
                    {
                        yield break; // an impossible chunk: no copy to read
                    }

                    int first = (int)(stripeNr % groups) * copies;
                    ulong row = stripeNr / groups;
                    for (int i = 0; i < copies; i++)
                    {
                        yield return (Stripes[first + i].DevId, Stripes[first + i].Offset + (long)((row * StripeLength) + within));
                    }

                    yield break;
                }

                if (IsParityRaid)
                {
                    yield break;
                }

                // single, DUP, RAID1, RAID1C3, RAID1C4: every stripe holds the whole chunk.
                foreach ((ulong devId, long start) in Stripes)
                {
                    yield return (devId, start + (long)offset);
                }
            }
        }
    }
}
