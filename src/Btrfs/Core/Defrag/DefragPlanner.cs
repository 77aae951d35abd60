namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Pure logic: which byte ranges to hand to the kernel. From a file's extents in logical order it
    /// yields the ranges made only of extents a defragmentation should rewrite: unshared extents below
    /// the threshold (every unshared data extent when recompressing; shared ones too when asked),
    /// merged across holes, never across an extent that stays. A range of one extent alone is dropped
    /// (rewriting it cannot join it to anything: a lone small extent between shared or large ones stays
    /// one extent), and the file's final extent joins only a range that reaches it. Memory is
    /// constant: ranges stream out as they close.
    /// <para>
    /// The kernel (fs/btrfs/defrag.c) works through a call in clusters of 256 KiB from the call's start,
    /// and takes an extent whose next one it would not join (a hole, preallocated or large, or the end of
    /// the file) only where a target before it in the same cluster ends where it begins. So a range's last
    /// extent is rewritten whole only inside one cluster: the range's last call is made to start at most
    /// 256 KiB before its end (<see cref="DefragRange.FinalCallFrom"/>); a last extent too long for that
    /// stays out of the range (rewriting part of it split it and left its old extent on disk, and each
    /// later run rewrote the rest again). Extents the kernel would not join are not put in one range.
    /// </para>
    /// </summary>
    internal sealed class DefragPlanner
    {
        /// <summary>The kernel's defrag cluster (CLUSTER_SIZE in fs/btrfs/defrag.c).</summary>
        internal const long KernelCluster = 256 * 1024;

        private readonly DefragOptions options;
        private readonly FileSystemKind fs;
        private readonly long size;
        private RawExtent? pending;
        private ByteRange? open;
        private int openCount;
        private long openBytes;
        private long openShared;
        private RawExtent last; // the open range's last extent

        internal DefragPlanner(DefragOptions options, FileSystemKind fs, long size)
        {
            this.options = options;
            this.fs = fs;
            this.size = size;
        }

        /// <summary>Bytes in the ranges yielded so far (extents to rewrite).</summary>
        internal long BytesToRewrite { get; private set; }

        /// <summary>Bytes of small shared extents left alone.</summary>
        internal long SharedBytesSkipped { get; private set; }

        /// <summary>Bytes of shared extents inside the ranges (they will stop sharing).</summary>
        internal long SharedBytesToUnshare { get; private set; }

        /// <summary>Where the extents the plan may still put in a range begin (the open range, or the extent not judged yet): those ending before it are behind it for good.</summary>
        internal long StillNeededFrom => open is ByteRange o ? o.Start : pending is RawExtent p ? (long)p.Logical : long.MaxValue;

        /// <summary>Every extent seen is inline (a file that lives in the metadata: nothing to rewrite).</summary>
        internal bool InlineOnly => inlineSeen && !otherSeen;

        private bool inlineSeen;
        private bool otherSeen;

        /// <summary>The ranges of <paramref name="extents"/> (those that overlap the requested range, whole: not cut to it) to rewrite.</summary>
        internal IEnumerable<DefragRange> Plan(IEnumerable<RawExtent> extents)
        {
            foreach (RawExtent e in extents)
            {
                if ((e.Flags & ExtentFlags.DataInline) != 0)
                {
                    inlineSeen = true;
                }
                else
                {
                    otherSeen = true;
                }

                // An extent at or past EOF (preallocated beyond the size) is never a target and never the final one.
                if ((long)e.Logical >= size)
                {
                    continue;
                }

                if (pending is RawExtent p && Judge(p, final: false) is DefragRange done)
                {
                    yield return done;
                }

                pending = e;
            }

            if (pending is RawExtent final && Judge(final, final: true) is DefragRange r1)
            {
                yield return r1;
            }

            if (Close(nextJoinable: false) is DefragRange r2)
            {
                yield return r2;
            }
        }

        /// <summary>Adds an extent to the open range, or closes the open range; returns a range that closed.</summary>
        private DefragRange? Judge(in RawExtent e, bool final)
        {
            bool joinable = open is not null && KernelJoins(e);
            if (IsTarget(e, final))
            {
                // Across a hole (the kernel never joins across it), or to an extent the kernel would not join: a new range.
                DefragRange? closed = open is not null && !joinable ? Close(nextJoinable: false) : null;
                openCount++;
                openBytes += (long)e.Length;
                if ((e.Flags & ExtentFlags.Shared) != 0)
                {
                    openShared += (long)e.Length;
                }

                open = open is ByteRange o ? new ByteRange(o.Start, e.FileEnd) : new ByteRange((long)e.Logical, e.FileEnd);
                last = e;
                return closed;
            }

            return Close(joinable);
        }

        /// <summary>
        /// Whether the kernel would take the open range's last extent for joining with <paramref name="next"/>
        /// (defrag_check_next_extent): right after it, data, and shorter than the threshold and than the
        /// largest extent of the last one's kind.
        /// </summary>
        private bool KernelJoins(in RawExtent next)
        {
            const ExtentFlags never = ExtentFlags.DataInline | ExtentFlags.Unwritten | ExtentFlags.Unknown;
            bool encoded = (last.Flags & ExtentFlags.Encoded) != 0;
            return next.Logical == last.End
                && (next.Flags & never) == 0
                && !CutByRange(next)
                && (long)next.Length < Math.Min(Math.Min(options.ExtentThreshold, uint.MaxValue), FragmentationCounter.MaxExtent(fs, encoded));
        }

        /// <summary>
        /// Whether <paramref name="e"/> reaches past either end of -Offset/-Length: the kernel judges the whole extent,
        /// so one cut by the range is never a target nor one the kernel is taken to join (a review: a large extent cut
        /// small was planned). The extents come whole, so one inside the range that begins or ends where it does is
        /// taken (a hostile review: before, with the map cut to the range, the first and last extents of the range
        /// were left out whatever their length, as if cut).
        /// </summary>
        private bool CutByRange(in RawExtent e) =>
            (long)e.Logical < options.Offset || (options.End != long.MaxValue && e.FileEnd > options.End);

        /// <summary>
        /// Closes the open range; returns it when it is worth rewriting. <paramref name="nextJoinable"/>: the
        /// kernel would take its last extent for joining with the extent after it.
        /// </summary>
        private DefragRange? Close(bool nextJoinable)
        {
            if (open is not ByteRange r)
            {
                return null;
            }

            long finalFrom = r.End;
            if (options.Compress is null && !nextJoinable && openCount > 1)
            {
                if (FinalCallStart(r.Start, (long)last.Logical, r.End) is long from)
                {
                    finalFrom = from;
                }
                else
                {
                    // Too long to be rewritten whole: it stays (the one before it is joinable with it, so all before it go).
                    openCount--;
                    openBytes -= (long)last.Length;
                    if ((last.Flags & ExtentFlags.Shared) != 0)
                    {
                        openShared -= (long)last.Length;
                    }

                    r = new ByteRange(r.Start, (long)last.Logical);
                    finalFrom = r.End;
                }
            }

            bool keep = openCount > 1 || (openCount == 1 && options.Compress is not null);
            if (keep)
            {
                BytesToRewrite += openBytes;
                SharedBytesToUnshare += openShared;
            }

            open = null;
            openCount = 0;
            openBytes = 0;
            openShared = 0;
            return keep ? new DefragRange(r.Start, r.End, finalFrom) : null;
        }

        /// <summary>
        /// Where a call ending at <paramref name="end"/> must start so that its first cluster holds the whole
        /// last extent (from <paramref name="lastStart"/>) and a target before it: <paramref name="start"/> when the
        /// range fits, else the page boundary 256 KiB before the end; null when the last extent is too long.
        /// </summary>
        internal static long? FinalCallStart(long start, long lastStart, long end)
        {
            long page = Math.Max(4096, Environment.SystemPageSize);
            long ClusterEnd(long from) => from / page * page + KernelCluster;
            if (end <= ClusterEnd(start))
            {
                return start < lastStart ? start : null;
            }

            long aligned = (end - KernelCluster + page - 1) / page * page;
            return aligned > start && aligned < lastStart && end <= ClusterEnd(aligned) ? aligned : null;
        }

        private bool IsTarget(in RawExtent e, bool final)
        {
            const ExtentFlags never = ExtentFlags.DataInline | ExtentFlags.Unwritten | ExtentFlags.Unknown;
            if ((e.Flags & never) != 0 || CutByRange(e))
            {
                return false;
            }

            bool shared = (e.Flags & ExtentFlags.Shared) != 0;
            bool wanted = options.Compress is not null
                || (FragmentationCounter.IsSmall(e, options.ExtentThreshold, fs) && (!final || open is not null));
            if (!wanted)
            {
                return false;
            }

            if (shared && !options.IncludeShared)
            {
                SharedBytesSkipped += (long)e.Length;
                return false;
            }

            return true;
        }
    }

    /// <summary>
    /// A range to rewrite: the kernel is called for [Start, FinalCallFrom) in steps, then once for
    /// [FinalCallFrom, End) (at most 256 KiB: the range's last extent inside the call's first cluster).
    /// </summary>
    internal readonly record struct DefragRange(long Start, long End, long FinalCallFrom)
    {
        internal long Length => End - Start;
    }
}
