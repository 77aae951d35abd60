namespace Btrfs.Core
{
    using System;
    using System.Collections.Concurrent;
    using System.Collections.Generic;

    /// <summary>
    /// The parts of an extent every reference on its filesystem uses, read once per extent for a whole run (LOGICAL_INO,
    /// then each reference's item) and given to every file that uses it in part. Before, each such file read them all again:
    /// 4,000 reflink copies of one part of an extent (and the file using it whole last among its references) made 16 million
    /// searches, minutes where compsize takes 0.1 s (a hostile test). Held for at most <see cref="MostExtents"/> extents;
    /// beyond, they are read each time, as before.
    /// </summary>
    internal sealed class OtherReferences
    {
        /// <summary>The most extents whose used parts are kept (each a few ranges).</summary>
        internal const int MostExtents = 1 << 20;

        private readonly ConcurrentDictionary<(int FileSystem, ulong DiskBytenr), (ulong Start, ulong End)[]> known = new();

        /// <summary>
        /// The merged parts of <paramref name="extent"/> its references use (from <paramref name="read"/>, the references'
        /// ranges in uncompressed-extent coordinates, read until they cover it whole); an extent of a filesystem not told
        /// apart from others (number 0) is read each time.
        /// </summary>
        internal IEnumerable<(ulong Start, ulong End)> Of(ExtentUse extent, Func<ulong, IEnumerable<(ulong Start, ulong End)>> read)
        {
            ArgumentNullException.ThrowIfNull(extent);
            ArgumentNullException.ThrowIfNull(read);
            if (extent.FileSystem == 0)
            {
                return read(extent.DiskBytenr);
            }

            if (known.TryGetValue((extent.FileSystem, extent.DiskBytenr), out (ulong, ulong)[]? ranges))
            {
                return ranges;
            }

            var all = new ExtentUse(extent.FileSystem, extent.DiskBytenr, extent.DiskNumBytes, extent.RamBytes, extent.Category);
            foreach ((ulong start, ulong end) in read(extent.DiskBytenr))
            {
                all.Use(start, end);
                if (all.UsedBytes() >= extent.RamBytes)
                {
                    break; // used whole: the other references need not be read
                }
            }

            ranges = all.Ranges();
            if (known.Count < MostExtents)
            {
                known.TryAdd((extent.FileSystem, extent.DiskBytenr), ranges);
            }

            return ranges;
        }
    }
}
