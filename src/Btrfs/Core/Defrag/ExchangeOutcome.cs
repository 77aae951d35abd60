namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Pure logic: the extent map a file will have after <see cref="CopyExchangeDefragmenter"/> is done,
    /// from the file's and the preallocated copy's extent maps (each in logical order), so a copy that
    /// would leave the file worse is given up before anything is written. Streams: constant memory.
    /// </summary>
    internal static class ExchangeOutcome
    {
        /// <summary>
        /// The file's extents afterwards. An exchange (or MOVE_EXT) gives it the copy's extents whole. A
        /// remap (<paramref name="writtenDataOnly"/>: FIDEDUPERANGE, which maps written data only) gives
        /// the file's written extents the copy's placement and leaves its unwritten (preallocated) ones,
        /// and any written range the copy does not cover, where they are. The remapped extents stop being
        /// shared (the copy is closed after it).
        /// </summary>
        internal static IEnumerable<RawExtent> After(IEnumerable<RawExtent> file, IEnumerable<RawExtent> copy, bool writtenDataOnly)
        {
            ArgumentNullException.ThrowIfNull(file);
            ArgumentNullException.ThrowIfNull(copy);
            return writtenDataOnly ? Remapped(file, copy) : copy;
        }

        /// <summary>Whether an extent holds written data a remap moves (not unwritten, not inline).</summary>
        internal static bool IsWritten(in RawExtent e) => (e.Flags & (ExtentFlags.Unwritten | ExtentFlags.DataInline)) == 0;

        private static IEnumerable<RawExtent> Remapped(IEnumerable<RawExtent> file, IEnumerable<RawExtent> copy)
        {
            using IEnumerator<RawExtent> c = copy.GetEnumerator();
            bool has = c.MoveNext();
            foreach (RawExtent e in file)
            {
                if (!IsWritten(e))
                {
                    yield return e;
                    continue;
                }

                ulong at = e.Logical;
                while (at < e.End)
                {
                    while (has && c.Current.End <= at)
                    {
                        has = c.MoveNext();
                    }

                    if (!has || c.Current.Logical >= e.End)
                    {
                        yield return Piece(e, at, e.End); // the copy has nothing here: it stays
                        break;
                    }

                    if (c.Current.Logical > at)
                    {
                        yield return Piece(e, at, c.Current.Logical);
                        at = c.Current.Logical;
                        continue;
                    }

                    ulong end = Math.Min(e.End, c.Current.End);
                    yield return new RawExtent(at, c.Current.Physical + (at - c.Current.Logical), end - at, e.Flags & ~ExtentFlags.Shared);
                    at = end;
                }
            }
        }

        private static RawExtent Piece(in RawExtent e, ulong from, ulong to) => new(from, e.Physical + (from - e.Logical), to - from, e.Flags);
    }
}
