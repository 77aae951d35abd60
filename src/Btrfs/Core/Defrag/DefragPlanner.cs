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
    /// </summary>
    internal sealed class DefragPlanner
    {
        private readonly DefragOptions options;
        private readonly FileSystemKind fs;
        private readonly long size;
        private RawExtent? pending;
        private ByteRange? open;
        private int openCount;
        private long openBytes;
        private long openShared;

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

        /// <summary>The ranges of <paramref name="extents"/> (already cut to the requested range) to rewrite.</summary>
        internal IEnumerable<ByteRange> Plan(IEnumerable<RawExtent> extents)
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

                if (pending is RawExtent p && Judge(p, final: false) is ByteRange done)
                {
                    yield return done;
                }

                pending = e;
            }

            if (pending is RawExtent last && Judge(last, final: true) is ByteRange r1)
            {
                yield return r1;
            }

            if (Close() is ByteRange r2)
            {
                yield return r2;
            }
        }

        /// <summary>Adds an extent to the open range, or closes the open range; returns a range that closed.</summary>
        private ByteRange? Judge(in RawExtent e, bool final)
        {
            if (IsTarget(e, final))
            {
                // A hole between two small extents: the kernel never joins across it (each side is judged alone).
                ByteRange? closed = open is ByteRange before && (long)e.Logical != before.End ? Close() : null;
                openCount++;
                openBytes += (long)e.Length;
                if ((e.Flags & ExtentFlags.Shared) != 0)
                {
                    openShared += (long)e.Length;
                }

                open = open is ByteRange o ? new ByteRange(o.Start, (long)e.End) : new ByteRange((long)e.Logical, (long)e.End);
                return closed;
            }

            return Close();
        }

        private ByteRange? Close()
        {
            ByteRange? r = open;
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
            return keep ? r : null;
        }

        private bool IsTarget(in RawExtent e, bool final)
        {
            const ExtentFlags never = ExtentFlags.DataInline | ExtentFlags.Unwritten | ExtentFlags.Unknown;
            if ((e.Flags & never) != 0)
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
}
