namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Pure logic: counts a file's extents, fragments, small extents and bytes by kind from its
    /// FIEMAP extents in logical order, with constant memory. The rules (Measure-Fragmentation's help
    /// gives them to users):
    /// <list type="bullet">
    /// <item>A fragment is a run of physically contiguous extents, as filefrag counts them: an extent
    /// continues the run when it starts where the previous one ended on disk, or where it would start
    /// if the holes between them were filled. After a compressed (encoded) extent, whose disk size
    /// FIEMAP does not give, the next one continues the run when it starts within the previous one's
    /// length from the previous one's start: compressed pieces laid out one after another count once.</item>
    /// <item>A small extent is shorter than the threshold (capped at the largest extent the filesystem
    /// makes: 128 KiB for compressed btrfs data), not counting the file's final written extent, inline or
    /// unwritten extents.</item>
    /// <item>The score is the share of written bytes in fragments shorter than the (capped) threshold,
    /// the final fragment holding written data excepted (preallocated space after it does not take its
    /// place): 0 when the file is laid out as well as the filesystem allows.</item>
    /// </list>
    /// </summary>
    internal sealed class FragmentationCounter
    {
        /// <summary>btrfs: the largest uncompressed extent (BTRFS_MAX_EXTENT_SIZE).</summary>
        internal const long BtrfsMaxExtent = 128L << 20;

        /// <summary>btrfs: the largest compressed extent (BTRFS_MAX_COMPRESSED, decompressed size).</summary>
        internal const long BtrfsMaxCompressedExtent = 128L << 10;

        /// <summary>ext4: 32768 blocks of 4 KiB per extent.</summary>
        internal const long Ext4MaxExtent = 128L << 20;

        /// <summary>xfs: 2^21 blocks of 4 KiB per extent.</summary>
        internal const long XfsMaxExtent = 8L << 30;

        private readonly long threshold;
        private readonly FileSystemKind fs;
        private readonly long size;
        private RawExtent? pending;
        private RawExtent? previous;
        private long regionBytes;
        private bool regionEncoded;
        private bool runOpen;
        private long runBytes;
        private long runWritten;
        private (long Bytes, long Written)? lastWrittenRun; // closed, not judged yet: it is the final written one until another comes

        internal FragmentationCounter(long threshold, FileSystemKind fs, long size)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(threshold, 1);
            this.threshold = threshold;
            this.fs = fs;
            this.size = size;
        }

        internal long ExtentCount { get; private set; }

        internal long FragmentCount { get; private set; }

        internal long SmallExtentCount { get; private set; }

        internal long SmallExtentBytes { get; private set; }

        internal long LargestExtent { get; private set; }

        internal long ExtentBytes { get; private set; }

        internal long SharedBytes { get; private set; }

        internal long CompressedBytes { get; private set; }

        internal long UnwrittenBytes { get; private set; }

        /// <summary>Bytes of extents inside [0, size).</summary>
        internal long CoveredBytes { get; private set; }

        internal long WrittenBytes { get; private set; }

        internal long ShortRunWrittenBytes { get; private set; }

        internal long HoleBytes => Math.Max(0, size - CoveredBytes);

        internal long AverageExtentSize => ExtentCount == 0 ? 0 : ExtentBytes / ExtentCount;

        /// <summary>
        /// The fewest extents the file could have (e4defrag's "best"): one per logically contiguous
        /// region of extents (holes separate regions), more where a region is larger than the largest
        /// extent the filesystem makes. Complete after <see cref="Finish"/>.
        /// </summary>
        internal long BestExtentCount { get; private set; }

        /// <summary>0–100: the share of written bytes in short fragments (see the class summary).</summary>
        internal int Score => WrittenBytes == 0 ? 0 : (int)Math.Round(100.0 * ShortRunWrittenBytes / WrittenBytes, MidpointRounding.AwayFromZero);

        /// <summary>The counters of <paramref name="extents"/> (in logical order) as the extents of a file of <paramref name="size"/> bytes.</summary>
        internal static FragmentationCounter Of(IEnumerable<RawExtent> extents, long threshold, FileSystemKind fs, long size)
        {
            var c = new FragmentationCounter(threshold, fs, size);
            foreach (RawExtent e in extents)
            {
                c.Add(e);
            }

            c.Finish();
            return c;
        }

        /// <summary>The largest extent the filesystem makes for this kind of data.</summary>
        internal static long MaxExtent(FileSystemKind fs, bool encoded) => fs switch
        {
            FileSystemKind.Btrfs => encoded ? BtrfsMaxCompressedExtent : BtrfsMaxExtent,
            FileSystemKind.Ext4 => Ext4MaxExtent,
            FileSystemKind.Xfs => XfsMaxExtent,
            _ => long.MaxValue,
        };

        /// <summary>
        /// The extent threshold as it acts on the filesystem's plain data, for a message: capped at the largest extent the
        /// filesystem makes (before: "below 1.00 GiB" on btrfs, where no extent is longer than 128 MiB; a hostile test).
        /// </summary>
        internal static string ThresholdText(long threshold, FileSystemKind fs)
        {
            long max = MaxExtent(fs, encoded: false);
            return threshold > max ? $"{SizeFormatter.Format(max)} (the longest extent the filesystem makes; {SizeFormatter.Format(threshold)} was asked)" : SizeFormatter.Format(threshold);
        }

        /// <summary>Whether an extent (not the file's final one) is small for this threshold.</summary>
        internal static bool IsSmall(in RawExtent e, long threshold, FileSystemKind fs)
        {
            if ((e.Flags & (ExtentFlags.DataInline | ExtentFlags.Unwritten)) != 0)
            {
                return false;
            }

            bool encoded = (e.Flags & ExtentFlags.Encoded) != 0;
            return (long)e.Length < Math.Min(threshold, MaxExtent(fs, encoded));
        }

        /// <summary>Whether <paramref name="e"/> continues the physically contiguous run that <paramref name="prev"/> ends.</summary>
        internal static bool Continues(in RawExtent prev, in RawExtent e)
        {
            const ExtentFlags unknown = ExtentFlags.Unknown | ExtentFlags.DataInline;
            if (((prev.Flags | e.Flags) & unknown) != 0)
            {
                return false;
            }

            if ((prev.Flags & ExtentFlags.Encoded) != 0)
            {
                return e.Physical >= prev.Physical && e.Physical <= prev.Physical + prev.Length;
            }

            ulong dense = prev.Physical + prev.Length;
            ulong sameShift = prev.Physical + (e.Logical - prev.Logical);
            return e.Physical == dense || e.Physical == sameShift;
        }

        /// <summary>Adds the next extent in logical order.</summary>
        internal void Add(in RawExtent e)
        {
            ExtentCount++;

            // Inline data (btrfs) lives in the metadata: its bytes are the file's, not the block FIEMAP rounds it up to (a
            // 6-byte file showed a 4 KiB largest extent; a hostile review).
            long len = (e.Flags & ExtentFlags.DataInline) != 0 ? Fiemap.FileBytes(e, size) : (long)e.Length;
            ExtentBytes += len;
            LargestExtent = Math.Max(LargestExtent, len);
            if ((e.Flags & ExtentFlags.Shared) != 0)
            {
                SharedBytes += Fiemap.FileBytes(e, size); // the file's bytes, as Fiemap.Shared counts them
            }

            if ((e.Flags & ExtentFlags.Encoded) != 0)
            {
                CompressedBytes += len;
            }

            if ((e.Flags & ExtentFlags.Unwritten) != 0)
            {
                UnwrittenBytes += len;
            }

            if ((long)e.Logical < size)
            {
                CoveredBytes += Math.Min(e.FileEnd, size) - (long)e.Logical;
            }

            // Regions for the best count: logically contiguous extents, split at the largest extent size.
            bool encoded = (e.Flags & ExtentFlags.Encoded) != 0;
            if (previous is RawExtent before && before.End == e.Logical && encoded == regionEncoded)
            {
                regionBytes += len;
            }
            else
            {
                CloseRegion();
                regionBytes = len;
                regionEncoded = encoded;
            }

            // Runs (fragments), the filefrag way: the first extent opens one.
            if (previous is RawExtent prev && Continues(prev, e))
            {
                runBytes += len;
            }
            else
            {
                CloseRun();
                FragmentCount++;
                runOpen = true;
                runBytes = len;
                runWritten = 0;
            }

            if ((e.Flags & (ExtentFlags.DataInline | ExtentFlags.Unwritten)) == 0)
            {
                runWritten += len;
                WrittenBytes += len;
            }

            previous = e;

            // Small extents: an extent is judged once the next written one that starts before EOF shows it is not the
            // final one (space preallocated after the data, inside the size or past it, does not make the last data
            // extent an inner one).
            if (((long)e.Logical < size || size == 0) && (e.Flags & ExtentFlags.Unwritten) == 0)
            {
                if (pending is RawExtent p && IsSmall(p, threshold, fs))
                {
                    SmallExtentCount++;
                    SmallExtentBytes += (long)p.Length;
                }

                pending = e;
            }
        }

        /// <summary>Closes the last fragment: the file's final fragment holding written data is never short.</summary>
        internal void Finish()
        {
            CloseRegion();
            regionBytes = 0;

            // The final fragment with written data is exempt from the score, as the final extent is from the small count;
            // fragments of preallocated space only after it do not take its place.
            if (runOpen && runWritten > 0)
            {
                Judge(lastWrittenRun);
                lastWrittenRun = null;
            }

            runOpen = false;
        }

        private void CloseRegion()
        {
            if (regionBytes > 0)
            {
                long max = MaxExtent(fs, regionEncoded);
                BestExtentCount += (regionBytes + max - 1) / max;
            }
        }

        private void CloseRun()
        {
            if (!runOpen || runWritten == 0)
            {
                return; // nothing written in it: no bytes for the score, and not the final written fragment either
            }

            Judge(lastWrittenRun); // not the final written one: another came after it
            lastWrittenRun = (runBytes, runWritten);
        }

        private void Judge((long Bytes, long Written)? run)
        {
            long cap = Math.Min(threshold, MaxExtent(fs, encoded: false));
            if (run is (long bytes, long written) && bytes < cap)
            {
                ShortRunWrittenBytes += written;
            }
        }
    }
}
