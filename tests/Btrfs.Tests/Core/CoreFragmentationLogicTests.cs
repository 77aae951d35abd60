namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>Pure logic: the fragment rule, the small-extent rule, the defrag planner and the outcome of an exchange or remap, on synthetic extents.</summary>
    public class CoreFragmentationLogicTests
    {
        private const uint Shared = 0x2000;
        private const uint Encoded = 0x8;
        private const uint Unwritten = 0x800;
        private const uint Inline = 0x200 | 0x100;
        private const ulong K = 1024;

        private static RawExtent E(ulong logical, ulong physical, ulong length, uint flags = 0) => new(logical, physical, length, (ExtentFlags)flags);

        private static FragmentationCounter Count(long size, long threshold, params RawExtent[] extents)
        {
            var c = new FragmentationCounter(threshold, FileSystemKind.Btrfs, size);
            foreach (RawExtent e in extents)
            {
                c.Add(e);
            }

            c.Finish();
            return c;
        }

        [Fact]
        public void TheFilefragRuleAndTheCompressedWindow()
        {
            Assert.True(FragmentationCounter.Continues(E(0, 1000 * K, 64 * K), E(64 * K, 1064 * K, 4 * K)));          // dense
            Assert.True(FragmentationCounter.Continues(E(0, 1000 * K, 64 * K), E(128 * K, 1128 * K, 4 * K)));         // same shift across a hole
            Assert.True(FragmentationCounter.Continues(E(0, 1000 * K, 64 * K), E(192 * K, 1064 * K, 4 * K)));         // dense across a hole
            Assert.False(FragmentationCounter.Continues(E(0, 1000 * K, 64 * K), E(64 * K, 2000 * K, 4 * K)));         // elsewhere
            Assert.False(FragmentationCounter.Continues(E(0, 1000 * K, 64 * K), E(64 * K, 900 * K, 4 * K)));          // before it
            Assert.True(FragmentationCounter.Continues(E(0, 1000 * K, 128 * K, Encoded), E(128 * K, 1020 * K, 128 * K, Encoded))); // next compressed piece
            Assert.True(FragmentationCounter.Continues(E(0, 1000 * K, 128 * K, Encoded), E(128 * K, 1000 * K, 64 * K, Encoded)));  // same compressed extent again
            Assert.False(FragmentationCounter.Continues(E(0, 1000 * K, 128 * K, Encoded), E(128 * K, 1200 * K, 128 * K, Encoded)));
            Assert.False(FragmentationCounter.Continues(E(0, 0, 4 * K, Inline), E(4 * K, 4 * K, 4 * K)));
        }

        [Fact]
        public void SmallExtentsSkipTheFinalInlineAndUnwrittenOnes()
        {
            FragmentationCounter c = Count(
                (long)(400 * K),
                (long)(64 * K),
                E(0, 1000 * K, 16 * K),
                E(16 * K, 5000 * K, 128 * K),
                E(144 * K, 9000 * K, 32 * K, Unwritten),
                E(176 * K, 7000 * K, 16 * K, Shared),
                E(192 * K, 3000 * K, 16 * K),          // final (the next starts at EOF)
                E(400 * K, 8000 * K, 64 * K, Unwritten)); // preallocated past EOF
            Assert.Equal(6, c.ExtentCount);
            Assert.Equal(6, c.FragmentCount);
            Assert.Equal(2, c.SmallExtentCount);        // 16 K at 0 and the shared 16 K; not the unwritten, not the final
            Assert.Equal((long)(32 * K), c.SmallExtentBytes);
            Assert.Equal((long)(16 * K), c.SharedBytes);
            Assert.Equal((long)(96 * K), c.UnwrittenBytes);
            Assert.Equal((long)((400 - 208) * K), c.HoleBytes);
            Assert.Equal((long)(128 * K), c.LargestExtent);
        }

        [Fact]
        public void TheScoreIsTheShareOfWrittenBytesInShortFragments()
        {
            // Four 64 KiB fragments far apart, threshold 128 KiB: the first three are short, the final one exempt.
            FragmentationCounter c = Count((long)(256 * K), (long)(128 * K), E(0, 1000 * K, 64 * K), E(64 * K, 3000 * K, 64 * K), E(128 * K, 5000 * K, 64 * K), E(192 * K, 7000 * K, 64 * K));
            Assert.Equal(75, c.Score);
            FragmentationCounter one = Count((long)(256 * K), (long)(128 * K), E(0, 1000 * K, 256 * K));
            Assert.Equal(0, one.Score);
            Assert.Equal(0, Count(0, 4096).Score);
        }

        private static List<(long, long)> Plan(DefragOptions o, long size, params RawExtent[] extents)
        {
            var p = new DefragPlanner(o, FileSystemKind.Btrfs, size);
            return p.Plan(extents).Select(r => (r.Start, r.End)).ToList();
        }

        [Fact]
        public void ThePlannerJoinsSmallUnsharedExtentsButNeverAcrossAHoleAndStopsAtWhatStays()
        {
            var o = new DefragOptions { ExtentThreshold = (long)(64 * K) };
            RawExtent[] extents =
            {
                E(0, 1000 * K, 16 * K),
                E(16 * K, 2000 * K, 16 * K),
                E(64 * K, 3000 * K, 16 * K),                 // after a hole: a range of its own (no extent spans a hole)
                E(80 * K, 4000 * K, 16 * K, Shared),         // stays shared: closes the range
                E(96 * K, 5000 * K, 16 * K),
                E(112 * K, 6000 * K, 256 * K),               // large: closes
                E(368 * K, 7000 * K, 16 * K),                // alone before the final one
                E(384 * K, 8000 * K, 16 * K),                // final: joins the open range
            };
            var p = new DefragPlanner(o, FileSystemKind.Btrfs, (long)(400 * K));
            var ranges = p.Plan(extents).Select(r => (r.Start, r.End)).ToList();

            // [64K,80K) is one extent alone between a hole and a shared one, [96K,112K) one between a shared and a
            // large one: rewriting either would change nothing. Before: [0,80K) was one range across the hole, and
            // the kernel left [64K,80K) as it was while the result said it was rewritten.
            Assert.Equal(new[] { (0L, (long)(32 * K)), ((long)(368 * K), (long)(400 * K)) }, ranges);
            Assert.Equal((long)(64 * K), p.BytesToRewrite);
            Assert.Equal((long)(16 * K), p.SharedBytesSkipped);
            Assert.Equal(0, p.SharedBytesToUnshare);

            var q = new DefragPlanner(o with { IncludeShared = true }, FileSystemKind.Btrfs, (long)(400 * K));
            var all = q.Plan(extents).Select(r => (r.Start, r.End)).Take(2).ToList();
            Assert.Equal(new[] { (0L, (long)(32 * K)), ((long)(64 * K), (long)(112 * K)) }, all);
            Assert.Equal((long)(16 * K), q.SharedBytesToUnshare);

            // Small extents each between holes (a sparse image): nothing the kernel could join.
            Assert.Empty(Plan(new DefragOptions { ExtentThreshold = (long)(64 * K), IncludeShared = true }, (long)(1024 * K), E(0, 1000 * K, 64 * K, Shared), E(128 * K, 1100 * K, 64 * K, Shared), E(256 * K, 1200 * K, 64 * K, Shared), E(384 * K, 1300 * K, 64 * K, Shared)));
        }

        [Fact]
        public void ALastExtentIsRewrittenByACallStartingAClusterBeforeTheEndOrLeftOutAndACutOneIsNeverPlanned()
        {
            var o = new DefragOptions { ExtentThreshold = 32L << 20 };
            static DefragRange[] Ranges(DefragOptions o, long size, params RawExtent[] e) => new DefragPlanner(o, FileSystemKind.Btrfs, size).Plan(e).ToArray();
            long page = Math.Max(4096, Environment.SystemPageSize);

            // Fifteen 64 KiB extents, then a 200 KiB last one: one range, its last call 256 KiB before the end.
            RawExtent[] small = Enumerable.Range(0, 15).Select(i => E((ulong)i * 64 * K, 9000 * K + ((ulong)i * 128 * K), 64 * K)).ToArray();
            RawExtent last = E(960 * K, 50000 * K, 200 * K);
            DefragRange r = Assert.Single(Ranges(o, 1160 * 1024, small.Append(last).ToArray()));
            Assert.Equal((0L, 1160L * 1024, ((1160L * 1024) - (256 * 1024) + page - 1) / page * page), (r.Start, r.End, r.FinalCallFrom));

            // A last extent over 256 KiB stays out (before: it was split, and every run rewrote part of it again).
            DefragRange s = Assert.Single(Ranges(o, 1260 * 1024, small.Append(E(960 * K, 50000 * K, 300 * K)).ToArray()));
            Assert.Equal((0L, 960L * 1024, 960L * 1024), (s.Start, s.End, s.FinalCallFrom));

            // Cut by -Length: a 100 MiB extent of which only 100 KiB is in the range is not a target nor joinable (a
            // review: it was both).
            var cut = o with { Length = 1260 * 1024 };
            DefragRange c = Assert.Single(Ranges(cut, 200L << 20, small.Append(last).Append(E(1160 * K, 90000 * K, 100UL << 20)).ToArray()));
            Assert.Equal((0L, 1160L * 1024), (c.Start, c.End));
            Assert.True(c.FinalCallFrom < 960 * 1024, "the 200 KiB extent is the range's last: its call starts before it");

            // Extents inside the range that begin where it begins and end where it ends are targets; one that begins
            // before it is not (a hostile review: with the map cut to the range, the first and the last were left out).
            var inside = o with { Offset = 64 * 1024, Length = 640 * 1024 };
            DefragRange d = Assert.Single(Ranges(inside, 1160 * 1024, small.Append(last).ToArray()));
            Assert.Equal((64L * 1024, 704L * 1024), (d.Start, d.End));
            var across = o with { Offset = 96 * 1024, Length = 608 * 1024 };
            DefragRange a = Assert.Single(Ranges(across, 1160 * 1024, small.Append(last).ToArray()));
            Assert.Equal((128L * 1024, 704L * 1024), (a.Start, a.End));
        }

        [Fact]
        public void AMapComparedWithItselfMovedNothingAndARewriteCountsWhatMovedAndWhatStoppedBeingShared()
        {
            RawExtent[] before = { E(0, 1000 * K, 16 * K, Shared), E(16 * K, 3000 * K, 16 * K), E(64 * K, 5000 * K, 32 * K, Shared) };
            Assert.Equal((0L, 0L, 0L), ExtentComparison.Moved(before, before));

            // The first two joined elsewhere; the last one left as it was (one piece of it split off by FIEMAP's paging).
            RawExtent[] after = { E(0, 9000 * K, 32 * K), E(64 * K, 5000 * K, 16 * K, Shared), E(80 * K, 5016 * K, 16 * K, Shared) };
            Assert.Equal(((long)(32 * K), (long)(16 * K), 0L), ExtentComparison.Moved(before, after));

            // Compressed: in place while the extent's disk address is the same.
            RawExtent[] packed = { E(0, 1000 * K, 128 * K, Encoded), E(128 * K, 1000 * K, 128 * K, Encoded) };
            Assert.Equal((0L, 0L, 0L), ExtentComparison.Moved(packed, packed));
            Assert.Equal(((long)(256 * K), 0L, (long)(256 * K)), ExtentComparison.Moved(packed, new[] { E(0, 2000 * K, 256 * K, Encoded) }));
        }

        [Fact]
        public void AFinalExtentAloneIsNothingToDoAndCompressionTakesEveryUnsharedExtent()
        {
            var o = new DefragOptions { ExtentThreshold = (long)(64 * K) };
            Assert.Empty(Plan(o, (long)(16 * K), E(0, 1000 * K, 16 * K)));
            Assert.Empty(Plan(o, (long)(8 * K), E(0, 0, 8 * K, Inline)));
            var c = new DefragOptions { Compress = DefragCompression.Zstd };
            Assert.Equal(new[] { (0L, (long)(512 * K)) }, Plan(c, (long)(512 * K), E(0, 1000 * K, 256 * K), E(256 * K, 9000 * K, 256 * K)));
            Assert.Empty(Plan(c, (long)(256 * K), E(0, 1000 * K, 256 * K, Shared)));
        }

        [Fact]
        public void ARemapMovesWrittenExtentsOntoTheCopyAndLeavesUnwrittenOnesWhereTheyAre()
        {
            const long Xfs = 8L << 30;
            RawExtent[] file =
            {
                E(0, 1000 * K, 8 * K, Shared),           // written, shared: moves, and is no longer shared
                E(8 * K, 1008 * K, 8 * K, Unwritten),    // preallocated: stays
                E(32 * K, 5000 * K, 16 * K),             // written, over two of the copy's extents and a gap in it
                E(64 * K, 7000 * K, 4 * K),              // written, where the copy has nothing: stays
                E(80 * K, 6000 * K, 4 * K),              // two written extents apart on disk,
                E(84 * K, 6100 * K, 4 * K),              // side by side in the copy: joined
                E(128 * K, 9000 * K, 4 * K, Unwritten),  // beyond the end: stays
            };
            RawExtent[] copy =
            {
                E(0, 20000 * K, 8 * K, Unwritten),
                E(32 * K, 30000 * K, 4 * K, Unwritten),
                E(40 * K, 40000 * K, 8 * K, Unwritten),
                E(80 * K, 50000 * K, 8 * K, Unwritten),
            };
            Assert.Equal(
                new[]
                {
                    E(0, 20000 * K, 8 * K),
                    E(8 * K, 1008 * K, 8 * K, Unwritten),
                    E(32 * K, 30000 * K, 4 * K),
                    E(36 * K, 5004 * K, 4 * K),
                    E(40 * K, 40000 * K, 8 * K),
                    E(64 * K, 7000 * K, 4 * K),
                    E(80 * K, 50000 * K, 8 * K),
                    E(128 * K, 9000 * K, 4 * K, Unwritten),
                },
                ExchangeOutcome.After(file, copy, 128 * K, writtenDataOnly: true, Xfs).ToArray());
        }

        [Fact]
        public void AnExchangeGivesTheFileTheCopysPlacesWithItsOwnStates()
        {
            // Written 1 MiB and preallocated 1 MiB side by side at A, written 1 MiB at B: 3 extents in 2
            // fragments. The copy has two pieces that cut the preallocated MiB: 4 extents, still 2 fragments.
            const ulong M = 1024 * K;
            RawExtent[] file = { E(0, 100 * M, M), E(M, 101 * M, M, Unwritten), E(2 * M, 300 * M, M) };
            RawExtent[] copy = { E(0, 500 * M, 3 * M / 2, Unwritten), E(3 * M / 2, 700 * M, 3 * M / 2, Unwritten) };
            RawExtent[] after = ExchangeOutcome.After(file, copy, 3 * M, writtenDataOnly: false, 128L << 20).ToArray();
            Assert.Equal(
                new[] { E(0, 500 * M, M), E(M, 501 * M, M / 2, Unwritten), E(3 * M / 2, 700 * M, M / 2, Unwritten), E(2 * M, 700 * M + M / 2, M) },
                after);
            FragmentationCounter before = Count((long)(3 * M), 32L << 20, file), then = Count((long)(3 * M), 32L << 20, after);
            Assert.Equal((3L, 2L), (before.ExtentCount, before.FragmentCount));
            Assert.Equal((4L, 2L), (then.ExtentCount, then.FragmentCount)); // not better: the file is left alone
        }

        [Fact]
        public void TheRangesARemapTakesAreThoseBothSidesHold()
        {
            ByteRange[] a = { new(0, 10), new(20, 30) };
            ByteRange[] b = { new(5, 25), new(28, 40) };
            Assert.Equal(new[] { new ByteRange(5, 10), new ByteRange(20, 25), new ByteRange(28, 30) }, ExchangeOutcome.Common(a, b).ToArray());
            Assert.Empty(ExchangeOutcome.Common(a, Array.Empty<ByteRange>()));
        }

        [Fact]
        public void DataMovedAwayFromThePreallocatedSpaceBetweenItCountsMoreFragments()
        {
            // Pieces of 4 KiB written and 4 KiB preallocated, contiguous on disk in two runs: 2 fragments.
            var file = new List<RawExtent>();
            var copy = new List<RawExtent>();
            for (ulong i = 0; i < 8; i++)
            {
                ulong at = i * 16 * K, disk = (i < 4 ? 1000 * K : 9000 * K) + i * 16 * K;
                file.Add(E(at, disk, 4 * K));
                file.Add(E(at + 4 * K, disk + 4 * K, 4 * K, Unwritten));
                copy.Add(E(at, 50000 * K + i * 4 * K, 4 * K, Unwritten)); // the written pieces only, one after another
            }

            FragmentationCounter before = Count((long)(128 * K), (long)(32 * K), file.ToArray());
            FragmentationCounter copyAlone = Count((long)(128 * K), (long)(32 * K), copy.ToArray());
            FragmentationCounter after = Count((long)(128 * K), (long)(32 * K), ExchangeOutcome.After(file, copy, 128 * K, writtenDataOnly: true, 8L << 30).ToArray());
            Assert.Equal(2, before.FragmentCount);
            Assert.Equal(1, copyAlone.FragmentCount);
            Assert.Equal(16, after.FragmentCount); // every piece apart from its preallocated half
        }
    }
}
