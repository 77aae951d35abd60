namespace Btrfs.Core
{
    using System;
    using System.Linq;

    /// <summary>One range of a duplicate group: a file, where the bytes start, how many.</summary>
    public sealed class DuplicateRange
    {
        /// <summary>The file.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>First byte of the range.</summary>
        public long Offset { get; init; }

        /// <summary>Bytes of the range (the group's Length).</summary>
        public long Length { get; init; }

        /// <summary>The file's inode when it was searched: a file under that name now with another inode is not touched (0: not checked).</summary>
        public ulong Inode { get; init; }

        /// <summary>
        /// The file's device (st_dev, as `stat -c %d` prints it) when it was searched: with <see cref="Inode"/> it
        /// names the file (btrfs numbers inodes per subvolume, and a snapshot's files have their source's numbers,
        /// on a device of their own). A file under that name now on another device is not touched (0: not checked).
        /// </summary>
        public ulong Device { get; init; }

        /// <summary>
        /// The file's inode generation when it was searched (FS_IOC_GETVERSION): with <see cref="Inode"/> it tells the
        /// file searched from one made later under the same inode number after it was deleted (xfs reuses numbers at
        /// once). A file under that name now with another generation is not touched (0: not checked).
        /// </summary>
        public uint Generation { get; init; }

        /// <summary>
        /// Whether sharing the keeper's extents here would free no disk space, even with every group of the
        /// search deduplicated: each extent the range uses stays, because its file still uses other parts
        /// of it (btrfs frees an extent only when no byte of it is referenced: a bookend). Such a range would
        /// only be split into more extents. Invoke-BtrfsDedupe leaves it as it is unless -IncludeUnreclaimable
        /// is given. Set on a range that shares the keeper's extents already (nothing to do there), and
        /// otherwise only where the file's extents are known exactly (btrfs as root, xfs); never on the
        /// keeper (the first range), on a range over an extent shared with other files, nor where the
        /// extents could not be read (false means "may free").
        /// </summary>
        public bool FreesNothing { get; init; }

        /// <summary>
        /// Bytes of this range that share the keeper's extents already, as found by the search (the keeper's own: 0). A
        /// range that shares them whole is <see cref="FreesNothing"/> and needs nothing; Invoke-BtrfsDedupe counts what it
        /// leaves so as already shared.
        /// </summary>
        public long SharedWithKeeperBytes { get; init; }

        internal DuplicateRange AsFreeingNothing() => new() { Path = Path, Offset = Offset, Length = Length, Inode = Inode, Device = Device, Generation = Generation, FreesNothing = true, SharedWithKeeperBytes = SharedWithKeeperBytes };

        /// <inheritdoc/>
        public override string ToString() => $"{Path}@{Offset}+{Length}";
    }

    /// <summary>
    /// Ranges of files that hold the same bytes (as far as a 128-bit hash of each block tells; the kernel
    /// compares them byte for byte when they are deduplicated), adjacent equal blocks merged into one range.
    /// </summary>
    public sealed class BtrfsDuplicateGroup
    {
        /// <summary>The ranges; the first is the one the others would share (the keeper).</summary>
        public DuplicateRange[] Ranges { get; init; } = Array.Empty<DuplicateRange>();

        /// <summary>Bytes of each range.</summary>
        public long Length { get; init; }

        /// <summary>How many ranges hold these bytes.</summary>
        public int Copies => Ranges.Length;

        /// <summary>How many different files the ranges are in.</summary>
        public int Files => Ranges.Select(r => r.Path).Distinct(StringComparer.Ordinal).Count();

        /// <summary>The keeper's file.</summary>
        public string Path => Ranges.Length > 0 ? Ranges[0].Path : string.Empty;

        /// <summary>
        /// Where the keeper's range begins in its file: with <see cref="Path"/> and <see cref="Length"/> the group names
        /// the keeper's range, so piped on to Get-BtrfsExtentOwner it asks about that range, not the whole
        /// file (a hostile review: only -Length bound, which alone is ignored).
        /// </summary>
        public long Offset => Ranges.Length > 0 ? Ranges[0].Offset : 0;

        /// <summary>Bytes of the other ranges that already share the keeper's extents (nothing to do for them).</summary>
        public long AlreadySharedBytes { get; init; }

        /// <summary>Logical bytes deduplicating would make share: the other ranges, less what is shared already.</summary>
        public long DuplicateBytes => (Length * Math.Max(0, Copies - 1)) - AlreadySharedBytes;

        /// <summary>
        /// Disk bytes deduplicating the group would free, given that the groups listed before it are
        /// deduplicated too (so the figures add up): on btrfs, an extent of the other ranges goes only when
        /// every reference the file has to it is deduplicated (a partly covered extent stays whole, a
        /// bookend), at its size on disk (compressed size); on xfs block by block. Extents shared with
        /// other files are not counted. Exact on btrfs as root (the file extent items); otherwise on btrfs
        /// an estimate (FIEMAP does not show which pieces belong to one extent, and merges adjacent ones).
        /// </summary>
        public long ReclaimableBytes { get; init; }

        /// <summary>
        /// Whether deduplicating the group would free nothing: every range but the keeper is marked
        /// <see cref="DuplicateRange.FreesNothing"/>. A group can help free space and still be credited 0
        /// <see cref="ReclaimableBytes"/> (an extent is credited to the group that covers its last reference).
        /// </summary>
        public bool FreesNothing => Ranges.Length > 1 && Ranges.Skip(1).All(r => r is not null && r.FreesNothing);

        /// <summary>The group with the range at <paramref name="keeper"/> first (the keeper), the first where it was.</summary>
        internal BtrfsDuplicateGroup WithKeeper(int keeper)
        {
            var ranges = (DuplicateRange[])Ranges.Clone();
            (ranges[0], ranges[keeper]) = (ranges[keeper], ranges[0]);
            return new() { Ranges = ranges, Length = Length, AlreadySharedBytes = AlreadySharedBytes, ReclaimableBytes = ReclaimableBytes };
        }

        internal BtrfsDuplicateGroup WithReclaimable(long bytes, DuplicateRange[] ranges) => new()
        {
            Ranges = ranges,
            Length = Length,
            AlreadySharedBytes = AlreadySharedBytes,
            ReclaimableBytes = bytes,
        };

        /// <inheritdoc/>
        public override string ToString() => $"{Copies} x {Length} bytes ({Path})";
    }
}
