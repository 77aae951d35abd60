namespace Btrfs.Core
{
    using System;
    using System.Buffers.Binary;
    using System.IO.Hashing;
    using System.Security.Cryptography;
    using Btrfs.Kernel;

    /// <summary>
    /// A block's fingerprint on btrfs, made of the checksums btrfs keeps for each of its sectors: XxHash128
    /// over the sectors' checksums in order, as btrfs stores them (crc32c, xxhash64 or sha256; blake2b is
    /// not computed here, so a filesystem using it hashes the bytes instead). The same value comes from the
    /// checksum tree (no data read: <see cref="FromSums"/>) or from the bytes when they are read
    /// (<see cref="FromData"/>: compressed extents, whose checksums cover the compressed bytes, or a caller
    /// without CAP_SYS_ADMIN), so blocks found either way are compared with each other. Like every hash
    /// here it only finds candidates: the kernel compares the bytes before it shares anything.
    /// </summary>
    internal sealed class SectorChecksums
    {
        private readonly byte[] scratch;

        private SectorChecksums(ushort type, int size, int sectorSize, int nodeSize, int blockSize)
        {
            (Type, Size, SectorSize, NodeSize, BlockSize) = (type, size, sectorSize, nodeSize, blockSize);
            scratch = new byte[BytesPerBlock];
            Zero = FromData(new byte[blockSize]);
        }

        /// <summary>
        /// The fewest bits of checksum a block's fingerprint is made of. One crc32c (32 bits) per 4 KiB block
        /// gives unrelated blocks the same fingerprint by chance: about one pair in every 300 MiB of blocks
        /// (the birthday bound, 2^16 blocks), seen on random data (a hostile review). From 64 bits, one pair in
        /// 2^32 blocks.
        /// </summary>
        internal const int LeastBits = 64;

        /// <summary>btrfs_csum_type: 0 crc32c, 1 xxhash64, 2 sha256.</summary>
        internal ushort Type { get; }

        /// <summary>Bytes per checksum.</summary>
        internal int Size { get; }

        /// <summary>Bytes per sector (one checksum each).</summary>
        internal int SectorSize { get; }

        /// <summary>Bytes per tree block: no checksum item is larger, so none covers more than <see cref="ItemReach"/>.</summary>
        internal int NodeSize { get; }

        /// <summary>The most disk bytes one checksum item covers.</summary>
        internal long ItemReach => (long)NodeSize / Size * SectorSize;

        /// <summary>Bytes per block.</summary>
        internal int BlockSize { get; }

        /// <summary>Bytes of checksums per block.</summary>
        internal int BytesPerBlock => BlockSize / SectorSize * Size;

        /// <summary>What the hash file records of how a file's hashes were made (0 is the bytes' XxHash128).</summary>
        internal byte Method => (byte)(1 + Type);

        /// <summary>The fingerprint of a block of zeros (such blocks start no duplicate range: a hole does better).</summary>
        internal UInt128 Zero { get; }

        /// <summary>
        /// The fingerprint from checksums of type <paramref name="type"/> and <paramref name="size"/> bytes per
        /// sector of <paramref name="sectorSize"/> bytes (items at most <paramref name="nodeSize"/> bytes), for blocks of <paramref name="blockSize"/> bytes; null
        /// where it cannot be used (blake2b or an unknown type, a size that does not match, blocks that are not
        /// whole sectors), or where a block's checksums hold fewer than <see cref="LeastBits"/> bits (crc32c at
        /// 4 KiB): the bytes are hashed instead.
        /// </summary>
        internal static SectorChecksums? For(ushort type, ushort size, uint sectorSize, uint nodeSize, int blockSize)
        {
            int expected = type switch
            {
                0 => 4,
                1 => 8,
                2 => 32,
                _ => 0,
            };
            return expected == 0 || size != expected || sectorSize < 512 || sectorSize > blockSize || blockSize % sectorSize != 0 || nodeSize == 0 || nodeSize > 1 << 20
                || (long)blockSize / sectorSize * size * 8 < LeastBits
                ? null
                : new SectorChecksums(type, size, (int)sectorSize, (int)nodeSize, blockSize);
        }

        /// <summary>The fingerprint of a block from its sectors' checksums (<see cref="BytesPerBlock"/> bytes).</summary>
        internal static UInt128 FromSums(ReadOnlySpan<byte> sums) => XxHash128.HashToUInt128(sums);

        /// <summary>The fingerprint of the block <paramref name="block"/> read: its sectors' checksums computed as btrfs does, then <see cref="FromSums"/>. Not thread safe.</summary>
        internal UInt128 FromData(ReadOnlySpan<byte> block)
        {
            Span<byte> sums = scratch;
            for (int s = 0, at = 0; at < block.Length; s += Size, at += SectorSize)
            {
                Checksum(block.Slice(at, SectorSize), sums.Slice(s, Size));
            }

            return FromSums(sums);
        }

        /// <summary>One sector's checksum as btrfs stores it: crc32c and xxhash64 little endian, sha256 as its bytes.</summary>
        internal void Checksum(ReadOnlySpan<byte> sector, Span<byte> into)
        {
            switch (Type)
            {
                case 0:
                    BinaryPrimitives.WriteUInt32LittleEndian(into, BtrfsDisk.Crc32C(sector));
                    break;
                case 1:
                    BinaryPrimitives.WriteUInt64LittleEndian(into, XxHash64.HashToUInt64(sector));
                    break;
                default:
                    SHA256.HashData(sector, into);
                    break;
            }
        }
    }
}
