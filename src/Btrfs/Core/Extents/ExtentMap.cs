namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>What part of a file to map, and how.</summary>
    public sealed record ExtentQuery
    {
        /// <summary>First byte of the range to map.</summary>
        public long Offset { get; init; }

        /// <summary>Bytes to map from <see cref="Offset"/>; null maps to the end of the file and beyond (preallocated space past EOF included).</summary>
        public long? Length { get; init; }

        /// <summary>Flush delayed allocation first (FIEMAP_FLAG_SYNC).</summary>
        public bool Sync { get; init; }

        /// <summary>Also yield hole records for the gaps between extents and up to the file size.</summary>
        public bool IncludeHoles { get; init; }

        /// <summary>Extents fetched per ioctl.</summary>
        public int PageExtents { get; init; } = Fiemap.DefaultPageExtents;
    }

    /// <summary>The extent map of a file: FIEMAP results as <see cref="FileExtent"/> records, streamed.</summary>
    public static class ExtentMap
    {
        /// <summary>
        /// Yields the extents of an open file in logical order. Errors of the ioctl surface as
        /// <see cref="FileOperationException"/> while enumerating.
        /// </summary>
        internal static IEnumerable<FileExtent> Read(OpenFile file, ExtentQuery query)
        {
            ArgumentNullException.ThrowIfNull(file);
            ArgumentNullException.ThrowIfNull(query);
            ArgumentOutOfRangeException.ThrowIfNegative(query.Offset);
            if (query.Length is long len)
            {
                ArgumentOutOfRangeException.ThrowIfLessThan(len, 1);
            }

            ulong start = (ulong)query.Offset;
            ulong length = query.Length is long l ? (ulong)l : ulong.MaxValue - start;
            IEnumerable<RawExtent> raw = Fiemap.Read(file, start, length, query.Sync, query.PageExtents);
            return ToRecords(file, raw, query, start, length);
        }

        private static IEnumerable<FileExtent> ToRecords(OpenFile file, IEnumerable<RawExtent> raw, ExtentQuery query, ulong start, ulong length)
        {
            long index = 0;
            IEnumerable<Segment> segments = query.IncludeHoles
                ? HoleFinder.Insert(raw, start, HoleFinder.HoleLimit(start, length, (ulong)file.Size))
                : Plain(raw);
            foreach (Segment s in segments)
            {
                yield return new FileExtent(
                    file.Path,
                    index++,
                    (long)s.Extent.Logical,
                    s.IsHole ? 0 : unchecked((long)s.Extent.Physical),
                    (long)s.Extent.Length,
                    (ExtentFlags)s.Extent.Flags,
                    s.IsHole,
                    file.FileSystem.Kind);
            }
        }

        private static IEnumerable<Segment> Plain(IEnumerable<RawExtent> raw)
        {
            foreach (RawExtent e in raw)
            {
                yield return new Segment(e, false);
            }
        }
    }

    /// <summary>An extent or a hole.</summary>
    internal readonly record struct Segment(RawExtent Extent, bool IsHole);

    /// <summary>Pure logic: fills the gaps of an ordered extent stream with hole segments.</summary>
    internal static class HoleFinder
    {
        /// <summary>Holes are reported within [start, min(start + length, fileSize)).</summary>
        internal static ulong HoleLimit(ulong start, ulong length, ulong fileSize)
        {
            ulong end = ulong.MaxValue - start < length ? ulong.MaxValue : start + length;
            return Math.Min(end, fileSize);
        }

        /// <summary>
        /// Yields every extent, and before each one a hole for any gap since the previous extent (or
        /// since <paramref name="start"/>), then a final hole up to <paramref name="limit"/>. A gap before an
        /// extent is a hole wherever it lies, past the file's end too (between extents preallocated there, or
        /// while a writer extends the file: before, such gaps had no hole, and the map did not cover the file;
        /// a hostile test); only the final hole stops at <paramref name="limit"/>. Extents are passed through unchanged.
        /// </summary>
        internal static IEnumerable<Segment> Insert(IEnumerable<RawExtent> extents, ulong start, ulong limit)
        {
            ulong cursor = start;
            foreach (RawExtent e in extents)
            {
                if (e.Logical > cursor)
                {
                    yield return new Segment(new RawExtent(cursor, 0, e.Logical - cursor, 0), true);
                }

                yield return new Segment(e, false);
                cursor = Math.Max(cursor, e.End);
            }

            if (cursor < limit)
            {
                yield return new Segment(new RawExtent(cursor, 0, limit - cursor, 0), true);
            }
        }
    }
}
