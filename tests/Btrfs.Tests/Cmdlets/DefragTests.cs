namespace Btrfs.Tests
{
    using System;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Invoke-BtrfsDefrag on a real btrfs: fewer extents, same bytes, sharing kept unless asked, clear skips and errors.</summary>
    [Collection(FileSystemCollection.Name)]
    public class DefragTests(LoopFileSystems fs)
    {
        private static long Filefrag(string path) => Infrastructure.Filefrag.Extents(path).Count;

        /// <summary>`btrfs filesystem du --raw`: (total, exclusive) of a file.</summary>
        private static (long Total, long Exclusive) Du(string path)
        {
            string line = Shell.Run("btrfs", "filesystem", "du", "--raw", path).Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return (long.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture));
        }

        [SkippableFact]
        public void AFragmentedFileEndsWithUnderATenthOfItsExtentsAndTheSameBytes()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "defrag"), "db.img");
            byte[] content = FileBuilder.Fragmented(file, 16 << 20, 3000);
            long before = Filefrag(file);
            Assert.True(before > 1000, $"only {before} extents");

            // Under -MinimumFragments: left alone, and the result says why in a form a script can test.
            PwshResult few = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f -MinimumFragments 100000 -Confirm:$false", ("f", file));
            DefragResult below = Assert.Single(few.Objects<DefragResult>());
            Assert.True(below.Skipped);
            Assert.Equal(DefragSkipReason.BelowMinimum, below.SkipReason);
            Assert.Equal(before, Filefrag(file));

            DefragResult r = Expect.Defrag(file);
            Assert.False(r.Skipped);
            Assert.Equal(DefragSkipReason.None, r.SkipReason);
            Assert.Equal(DefragMethod.BtrfsDefragRange, r.Method);
            Assert.Equal(before, r.ExtentsBefore);
            long after = Filefrag(file);
            Assert.Equal(after, r.ExtentsAfter);
            Assert.True(after * 10 < before, $"{before} -> {after} extents");
            Assert.True(r.FragmentsAfter < r.FragmentsBefore);
            Assert.Equal(0, r.SmallExtentsAfter);
            Assert.True(r.BytesRewritten > 0);
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)), FileFacts.Hash(file));

            // The second run has nothing to do and does not call the kernel.
            DefragResult again = Expect.Defrag(file);
            Assert.True(again.Skipped);
            Assert.StartsWith("nothing to do", again.Reason, StringComparison.Ordinal);
            Assert.Equal(DefragSkipReason.NothingToDo, again.SkipReason);
            Assert.Equal(after, Filefrag(file));
        }

        [SkippableFact]
        public void SharedExtentsStaySharedByDefaultAndAreUnsharedOnlyWithIncludeShared()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "shared");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Fragmented(file, 8 << 20, 1200, seed: 5);
            string copy = Path.Combine(dir, "backup.img");
            Shell.Run("cp", "--reflink=always", file, copy);

            // Right after the backup every small extent is shared: left as it is, and said to be Shared, as on xfs (before:
            // NothingToDo, so a script looking for files kept fragmented by their copies missed every btrfs file; a review).
            Shell.Run("sync");
            string sharedLayout = Shell.Run("filefrag", "-v", file);
            DefragResult kept = Expect.Defrag(file);
            Assert.Equal((true, DefragSkipReason.Shared, 0L), (kept.Skipped, kept.SkipReason, kept.BytesRewritten));
            Assert.Contains("is all there is to rewrite; rewriting it would end the sharing (each copy then takes its own space), so it stays shared; -IncludeShared rewrites it anyway", kept.Reason, StringComparison.Ordinal);
            Assert.True(kept.SharedBytesSkipped > 0);
            Assert.Equal(sharedLayout, Shell.Run("filefrag", "-v", file));

            // Two shared extents (512 KiB and 88 KiB): what stays shared is what the reason names, all 600 KiB (before:
            // SharedBytesSkipped said 512 KiB, leaving out the extent that joins only another shared one; a hostile test).
            string two = Path.Combine(dir, "two.img"), between = Path.Combine(dir, "between.img");
            FileBuilder.WriteNew(two, FileBuilder.RandomBytes(512 << 10, 6));
            FileBuilder.WriteNew(between, FileBuilder.RandomBytes(64 << 10, 7));
            FileBuilder.WriteAt(two, 512 << 10, FileBuilder.RandomBytes(88 << 10, 8));
            Shell.Run("cp", "--reflink=always", two, Path.Combine(dir, "two-backup.img"));
            Shell.Run("sync");
            Assert.Equal(2, Infrastructure.Filefrag.Extents(two).Count);
            DefragResult twoKept = Expect.Defrag(two);
            Assert.Equal((DefragSkipReason.Shared, 600L << 10), (twoKept.SkipReason, twoKept.SharedBytesSkipped));
            Assert.StartsWith("shared: 600 KiB in extents", twoKept.Reason, StringComparison.Ordinal);
            // New writes to the live image, in clusters of 16 blocks written backwards with a sync each:
            // each cluster is 16 small extents of its own now; the rest is still shared.
            using (var w = new FileStream(file, FileMode.Open, FileAccess.Write))
            {
                for (int cluster = 0; cluster < 20; cluster++)
                {
                    for (int b = 15; b >= 0; b--)
                    {
                        w.Position = ((cluster * 96L) + b) * 4096;
                        w.Write(FileBuilder.RandomBytes(4096, (cluster * 16) + b));
                        w.Flush(flushToDisk: true);
                    }
                }
            }

            Shell.Run("sync");
            string copyHash = FileFacts.Hash(copy);
            long copyShared = Infrastructure.Filefrag.Extents(copy).Where(e => e.Flags.Contains("shared")).Sum(e => e.Length);
            (long _, long copyExclusive) = Du(copy);
            Assert.True(copyShared > 4 << 20);

            DefragResult r = Expect.Defrag(file);
            Assert.False(r.Skipped);
            Assert.True(r.SharedBytesSkipped > 0);
            Assert.Equal(0, r.SharedBytesUnshared);
            Shell.Run("sync");
            Assert.Equal(copyShared, Infrastructure.Filefrag.Extents(copy).Where(e => e.Flags.Contains("shared")).Sum(e => e.Length));
            Assert.Equal(copyExclusive, Du(copy).Exclusive);
            Assert.Equal(copyHash, FileFacts.Hash(copy));

            DefragResult all = Expect.Defrag(file, "-IncludeShared -Force");
            Assert.True(all.SharedBytesUnshared > 0);
            Shell.Run("sync");
            Assert.True(Du(copy).Exclusive > copyExclusive, "the copy should own its extents alone now");
            Assert.Equal(copyHash, FileFacts.Hash(copy));
        }

        /// <summary>Each 4 KiB block of a file (by its index) and where it is on disk, and whether its extent is shared, from filefrag.</summary>
        private static System.Collections.Generic.Dictionary<long, (long Physical, bool Shared)> Blocks(string path)
        {
            var map = new System.Collections.Generic.Dictionary<long, (long, bool)>();
            foreach (FilefragExtent e in Infrastructure.Filefrag.Extents(path))
            {
                for (long k = 0; k < e.Length / 4096; k++)
                {
                    map[(e.Logical / 4096) + k] = (e.Physical + (k * 4096), e.Flags.Contains("shared"));
                }
            }

            return map;
        }

        [SkippableFact]
        public void WhatTheResultSaysWasRewrittenAndUnsharedIsWhatTheKernelDid()
        {
            // Before: the figures were what the plan handed to the kernel, which leaves alone what it cannot join.
            string dir = fs.NewDirectory(TestFs.Btrfs, "measured");

            // Six 64 KiB extents, each between holes, shared with a reflink copy: nothing there can be joined.
            string sparse = Path.Combine(dir, "sparse.img");
            FileBuilder.Chunks(sparse, 6, 64 << 10, 256 << 10);
            Shell.Run("cp", "--reflink=always", sparse, Path.Combine(dir, "sparse-copy.img"));
            Shell.Run("sync");
            var layout = Blocks(sparse);

            // Without -IncludeShared too: nothing to do, not "shared", since -IncludeShared would rewrite nothing either (a review).
            DefragResult alone = Expect.Defrag(sparse);
            Assert.Equal((true, DefragSkipReason.NothingToDo), (alone.Skipped, alone.SkipReason));
            DefragResult none = Expect.Defrag(sparse, "-IncludeShared -Force");
            Assert.Equal((true, DefragSkipReason.NothingToDo, 0L, 0L), (none.Skipped, none.SkipReason, none.BytesRewritten, none.SharedBytesUnshared));
            Assert.Equal(layout, Blocks(sparse));

            // Small fragments and one 4 MiB extent after them, all shared: the figures are what moved on disk and
            // what stopped being shared, block by block from filefrag before and after.
            string mixed = Path.Combine(dir, "mixed.img");
            FileBuilder.Fragmented(mixed, 4 << 20, 1000);
            using (var s = new FileStream(mixed, FileMode.Append, FileAccess.Write))
            {
                s.Write(FileBuilder.RandomBytes(4 << 20, 9));
                s.Flush(flushToDisk: true);
            }

            Shell.Run("cp", "--reflink=always", mixed, Path.Combine(dir, "mixed-copy.img"));
            Shell.Run("sync");
            var before = Blocks(mixed);
            DefragResult r = Expect.Defrag(mixed, "-IncludeShared -Force");
            Shell.Run("sync");
            var after = Blocks(mixed);
            long moved = before.Count(b => after[b.Key].Physical != b.Value.Physical) * 4096L;
            long unshared = before.Count(b => b.Value.Shared && after[b.Key].Physical != b.Value.Physical && !after[b.Key].Shared) * 4096L;
            Assert.True(moved > 0, "nothing was rewritten");
            Assert.Equal((moved, unshared), (r.BytesRewritten, r.SharedBytesUnshared));
            Assert.Contains(SizeFormatter.Format(moved), r.Reason, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ALastExtentIsRewrittenWholeOrNotAtAllAndASecondRunIsNothingToDo()
        {
            // Found by a newcomer review. The kernel takes an extent it cannot join with the next one (the file's
            // last, or one before a hole or a large extent) only inside one 256 KiB cluster of the call. A 2 MiB
            // image with one block overwritten in its middle: before, 1.25 MiB of it was rewritten (-WhatIf said
            // 2 MiB), the last extent split, and every later run rewrote the same 1.25 MiB again.
            string dir = fs.NewDirectory(TestFs.Btrfs, "kernel-clusters");
            string image = Path.Combine(dir, "vm.img");
            FileBuilder.WriteNew(image, FileBuilder.RandomBytes(2 << 20, 31));
            Shell.Run("sync");
            FileBuilder.WriteAt(image, 257 * 4096, FileBuilder.RandomBytes(4096, 32));
            Shell.Run("sync");
            Assert.Equal(3, Filefrag(image));
            string hash = FileFacts.Hash(image);
            PwshResult preview = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = image }, captureHost: true);
            DefragResult first = Expect.Defrag(image);
            Shell.Run("sync");
            Assert.Equal((3, 2, 258 * 4096L), (first.ExtentsBefore, first.ExtentsAfter, first.BytesRewritten));
            Assert.Contains($"Rewrite {SizeFormatter.Format(first.BytesRewritten)} in extents", preview.HostText, StringComparison.Ordinal);
            string layout = Shell.Run("filefrag", "-v", image);
            DefragResult second = Expect.Defrag(image);
            Assert.Equal((DefragSkipReason.NothingToDo, 0L), (second.SkipReason, second.BytesRewritten));
            Assert.Equal(layout, Shell.Run("filefrag", "-v", image));
            Assert.Equal(hash, FileFacts.Hash(image));

            // A short last extent over a cluster boundary of a call from the range's start: the last call starts
            // 256 KiB before the end, so it is rewritten whole: one extent (before: two, its end left where it was).
            string db = Path.Combine(dir, "db.img");
            FileBuilder.WriteNew(db, FileBuilder.RandomBytes(100 << 10, 33));
            FileBuilder.WriteNew(Path.Combine(dir, "spacer"), FileBuilder.RandomBytes(1 << 20, 34));
            FileBuilder.WriteAt(db, 100 << 10, FileBuilder.RandomBytes(200 << 10, 35));
            Shell.Run("sync");
            Assert.Equal(2, Filefrag(db));
            hash = FileFacts.Hash(db);
            DefragResult joined = Expect.Defrag(db);
            Shell.Run("sync");
            Assert.Equal((2, 1, 300 << 10), (joined.ExtentsBefore, Filefrag(db), joined.BytesRewritten));
            Assert.Equal(hash, FileFacts.Hash(db));
        }

        [SkippableFact]
        public void WhatIfChangesNothingAndSaysWhatItWouldCost()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "whatif");
            string file = Path.Combine(dir, "db.img");
            FileBuilder.Fragmented(file, 4 << 20, 800);
            string done = Path.Combine(dir, "done.img");
            FileBuilder.WriteNew(done, FileBuilder.RandomBytes(1 << 20, 1));
            FileFacts before = FileFacts.Of(file);
            string layout = Shell.Run("filefrag", "-v", file);
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f, $g -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file, ["g"] = done }, captureHost: true);
            Assert.Empty(r.Errors);
            Assert.Empty(r.Output);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Equal(layout, Shell.Run("filefrag", "-v", file));
            Assert.Matches(@"What if: .*Rewrite ([0-9.]+ [KM]iB) in extents below 32\.0 MiB; needs up to \1 of free space while it runs \([0-9.]+ [KMG]iB free now", r.HostText.Replace("\n", " "));
            Assert.Contains("Nothing to defragment (nothing to do", r.HostText, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void APreviewCountsTheSpaceFreedJustNowAsTheRunDoes()
        {
            // Found by a hostile review: -WhatIf (and -Confirm's question) said "it would be refused (InsufficientSpace)"
            // from the free space before btrfs had committed what was freed just now, and the run, which reads it again
            // after a commit, rewrote the file. commit=300: the periodic commit does not come between.
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "256M", "commit=300");
            string file = Path.Combine(small.MountPoint, "db.img");
            string filler = Path.Combine(small.MountPoint, "filler");
            long avail = long.Parse(Shell.Run("findmnt", "-n", "-b", "-o", "AVAIL", small.MountPoint).Trim(), CultureInfo.InvariantCulture);
            Shell.Run("fallocate", "-l", (avail - (48L << 20)).ToString(CultureInfo.InvariantCulture), filler);
            FileBuilder.Fragmented(file, 24 << 20, 600);
            Shell.Run("sync");
            File.Delete(filler); // freed when btrfs next commits: not counted free yet
            long freeNow = long.Parse(Shell.Run("findmnt", "-n", "-b", "-o", "AVAIL", small.MountPoint).Trim(), CultureInfo.InvariantCulture);
            Assert.True(freeNow < 24L << 20, $"{freeNow} bytes counted free already"); // the case: less than the rewrite needs, before the commit

            PwshResult preview = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = file }, captureHost: true);
            Assert.Empty(preview.Errors);
            Assert.Contains("What if", preview.HostText, StringComparison.Ordinal);
            Assert.DoesNotContain("refused", preview.HostText, StringComparison.Ordinal);
            string hash = FileFacts.Hash(file);
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p", ("p", file));
            Assert.Empty(r.Errors);
            DefragResult d = Assert.Single(r.Objects<DefragResult>());
            Assert.True(d.ExtentsAfter < d.ExtentsBefore, $"{d.ExtentsBefore} -> {d.ExtentsAfter}");
            Assert.Equal(hash, FileFacts.Hash(file));
        }

        [SkippableFact]
        public void LessFreeSpaceThanTheRewriteNeedsIsRefusedWithNothingChanged()
        {
            // Found by a hostile review: -WhatIf said "no new space needed" and the run filled the filesystem part
            // way through (btrfs writes the new extents before it frees the old ones).
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "256M");
            string file = Path.Combine(small.MountPoint, "db.img");
            FileBuilder.Fragmented(file, 24 << 20, 600);
            Shell.Run("sync");
            long avail = long.Parse(Shell.Run("findmnt", "-n", "-b", "-o", "AVAIL", small.MountPoint).Trim(), CultureInfo.InvariantCulture);
            Shell.Run("fallocate", "-l", (avail - (8L << 20)).ToString(CultureInfo.InvariantCulture), Path.Combine(small.MountPoint, "filler"));
            Shell.Run("sync");
            FileFacts before = FileFacts.Of(file);
            string layout = Shell.Run("filefrag", "-v", file);
            PwshResult preview = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = file }, captureHost: true);
            Assert.Empty(preview.Errors);
            Assert.Matches(@"needs up to [0-9.]+ MiB of free space while it runs, more than the [0-9.]+ MiB free: it would be refused \(InsufficientSpace\)", preview.HostText.Replace("\n", " "));
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p", ("p", file));
            Assert.Equal(new[] { "InsufficientSpace" }, r.ErrorIds);
            Assert.Equal(file, r.Errors[0].TargetObject);
            Assert.Contains("of free space while it runs (btrfs writes the new extents before it frees the old ones", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Empty(r.Output);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Equal(layout, Shell.Run("filefrag", "-v", file));

            // A scheduled run: the file is measured and failed, counted in both (before: failed only).
            PwshResult scheduled = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -MaxDuration 00:05:00 -Confirm:$false", ("d", small.MountPoint));
            Assert.Contains("InsufficientSpace", scheduled.ErrorIds);
            DefragRunSummary summary = scheduled.Output.Select(o => o.BaseObject).OfType<DefragRunSummary>().Single();
            Assert.Equal((summary.FilesFailed, 0), (summary.FilesMeasured - summary.FilesBelowMinimum - summary.FilesSkipped, summary.FilesDefragmented));
            Assert.Equal(before, FileFacts.Of(file));

            // With room for it, it runs.
            File.Delete(Path.Combine(small.MountPoint, "filler"));
            Shell.Run("sync");
            Assert.True(Expect.Defrag(file).ExtentsAfter < 10);
        }

        [SkippableFact]
        public void TheThresholdMeasuredWithCarriesOverAndTheCommandLineWins()
        {
            // Before: Measure-Fragmentation f -Threshold 1MB | Invoke-BtrfsDefrag -WhatIf previewed "extents below 32.0 MiB".
            string dir = fs.NewDirectory(TestFs.Btrfs, "threshold");
            string file = Path.Combine(dir, "db.img");
            FileBuilder.Fragmented(file, 4 << 20, 800);
            FileFacts before = FileFacts.Of(file);
            var vars = new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file };
            PwshResult carried = Pwsh.Run("Measure-Fragmentation -LiteralPath $f -Threshold 1MB | Invoke-BtrfsDefrag -WhatIf", vars, captureHost: true);
            Assert.Empty(carried.Errors);
            Assert.Matches(@"What if: .*in extents below 1\.00 MiB;", carried.HostText.Replace("\n", " "));
            Assert.DoesNotContain("32.0 MiB", carried.HostText, StringComparison.Ordinal);

            PwshResult given = Pwsh.Run("Measure-Fragmentation -LiteralPath $f -Threshold 1MB | Invoke-BtrfsDefrag -WhatIf -ExtentThreshold 2MB", vars, captureHost: true);
            Assert.Empty(given.Errors);
            Assert.Matches(@"What if: .*in extents below 2\.00 MiB;", given.HostText.Replace("\n", " "));

            // A threshold above the longest extent btrfs makes acts as that one, and is said so (before: "below 1.00 GiB";
            // a hostile test).
            PwshResult capped = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f -WhatIf -ExtentThreshold 1GB", vars, captureHost: true);
            Assert.Empty(capped.Errors);
            Assert.Matches(@"What if: .*in extents below 128 MiB \(the longest extent the filesystem makes; 1\.00 GiB was asked\)", capped.HostText.Replace("\n", " "));
            Assert.Equal(before, FileFacts.Of(file));

            // Run for real: the kernel is handed the measured threshold, and says so in the result.
            PwshResult run = Pwsh.Run("Measure-Fragmentation -LiteralPath $f -Threshold 1MB | Invoke-BtrfsDefrag", vars);
            Assert.Empty(run.Errors);
            DefragResult result = Assert.Single(run.Objects<DefragResult>());
            Assert.Contains("below 1.00 MiB", result.Reason, StringComparison.Ordinal);
            Assert.Equal(before.Sha256, FileFacts.Hash(file));
        }

        [SkippableFact]
        public void EveryExtentOfAFilePipedInIsOneFileToDefragment()
        {
            // Before: Get-BtrfsExtent f.img | Invoke-BtrfsDefrag -WhatIf gave one whole-file preview per extent.
            string dir = fs.NewDirectory(TestFs.Btrfs, "perextent");
            string file = Path.Combine(dir, "f.img");
            FileBuilder.Fragmented(file, 4 << 20, 800);
            string other = Path.Combine(dir, "g.img");
            FileBuilder.Fragmented(other, 2 << 20, 801);
            long extents = Filefrag(file) + Filefrag(other);
            Assert.True(extents > 20, $"{extents} extents");
            var vars = new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file, ["g"] = other };

            PwshResult preview = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f, $g | Invoke-BtrfsDefrag -WhatIf", vars, captureHost: true);
            Assert.Empty(preview.Errors);
            string[] whatIf = preview.HostText.Split('\n').Where(l => l.StartsWith("What if:", StringComparison.Ordinal)).ToArray();
            Assert.Equal(2, whatIf.Length);
            Assert.Contains(file, whatIf[0], StringComparison.Ordinal);
            Assert.Contains(other, whatIf[1], StringComparison.Ordinal);

            PwshResult run = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f, $g | Invoke-BtrfsDefrag -Verbose", vars);
            Assert.Empty(run.Errors);
            Assert.Equal(new[] { file, other }, run.Objects<DefragResult>().Select(d => d.Path).ToArray());
            Assert.Contains(run.Verbose, v => v.Message.Contains("named again in this pipeline", StringComparison.Ordinal));
            Assert.True(Filefrag(file) < 20, $"{Filefrag(file)} extents after");

            // Get-BtrfsExtentOwner is the exception: each piped extent is its own question (covered in ExtentOwnerTests).
        }

        [SkippableFact]
        public void AnErrorThatStopsTheCommandClosesItsProgressBarsFirst()
        {
            // Before: with -ErrorAction Stop, the run's bar stayed open (no Completed record could be written after
            // the stop), and the host drew it to the end of the script. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "progress-stop");
            string file = Path.Combine(dir, "db.img");
            FileBuilder.Fragmented(file, 8 << 20, 1500);
            string missing = Path.Combine(dir, "nope.img");
            PwshResult r = Pwsh.Run("try { Invoke-BtrfsDefrag -LiteralPath $f, $n -StepSize 256KB -ErrorAction Stop } catch { 'caught ' + $_.FullyQualifiedErrorId }", ("f", file), ("n", missing));
            Assert.StartsWith("caught PathNotFound", Assert.Single(r.Output.Select(o => o.BaseObject).OfType<string>()), StringComparison.Ordinal);
            Assert.Contains(r.Progress, p => p.RecordType == ProgressRecordType.Processing && p.ParentActivityId == -1);
            foreach (IGrouping<int, ProgressRecord> bar in r.Progress.GroupBy(p => p.ActivityId))
            {
                Assert.Equal(ProgressRecordType.Completed, bar.Last().RecordType);
            }

            // So does a warning that stops it (an immutable file is skipped with a warning).
            string other = Path.Combine(dir, "db2.img");
            FileBuilder.Fragmented(other, 8 << 20, 1500, seed: 9);
            string immutable = Path.Combine(dir, "fixed.img");
            FileBuilder.WriteNew(immutable, FileBuilder.RandomBytes(64 << 10, 8));
            Shell.Run("chattr", "+i", immutable);
            try
            {
                PwshResult w = Pwsh.Run("try { Invoke-BtrfsDefrag -LiteralPath $f, $i -StepSize 256KB -WarningAction Stop } catch { 'caught' }", ("f", other), ("i", immutable));
                Assert.Contains("caught", w.Output.Select(o => o.BaseObject).OfType<string>());
                Assert.Contains(w.Progress, p => p.RecordType == ProgressRecordType.Processing && p.ParentActivityId == -1);
                foreach (IGrouping<int, ProgressRecord> bar in w.Progress.GroupBy(p => p.ActivityId))
                {
                    Assert.Equal(ProgressRecordType.Completed, bar.Last().RecordType);
                }
            }
            finally
            {
                Shell.Run("chattr", "-i", immutable);
            }
        }

        [SkippableFact]
        public void ProgressHasPercentUnderARunBarAndCompletes()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "progress"), "db.img");
            FileBuilder.Fragmented(file, 8 << 20, 1500);
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f -StepSize 256KB", ("f", file));
            Assert.Empty(r.Errors);
            var perFile = r.Progress.Where(p => p.ParentActivityId >= 0).ToList();
            Assert.Contains(perFile, p => p.PercentComplete is > 0 and < 100);
            Assert.Equal(ProgressRecordType.Completed, perFile[^1].RecordType);
            Assert.Equal(ProgressRecordType.Completed, r.Progress[^1].RecordType);
            Assert.Equal(-1, r.Progress[^1].ParentActivityId);
        }

        [SkippableFact]
        public void CompressMakesTheExtentsCompressed()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "compress"), "log.txt");
            FileBuilder.WriteNew(file, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 100_000).Select(i => $"entry {i}: all is well\n"))));
            string hash = FileFacts.Hash(file);
            Assert.DoesNotContain(Infrastructure.Filefrag.Extents(file), e => e.Flags.Contains("encoded"));
            DefragResult r = Expect.Defrag(file, "-Compress Zstd -CompressionLevel 3");
            Assert.False(r.Skipped);
            Assert.All(Infrastructure.Filefrag.Extents(file), e => Assert.Contains("encoded", e.Flags));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.StartsWith($"rewrote {SizeFormatter.Format(r.BytesRewritten)} compressed with zstd", r.Reason, StringComparison.Ordinal);

            // Random bytes do not compress: btrfs stores them as they are, and the result says so (a newcomer review:
            // it said "compressed with zstd", and compsize showed none of it compressed).
            string random = Path.Combine(Path.GetDirectoryName(file)!, "random.img");
            FileBuilder.WriteNew(random, FileBuilder.RandomBytes(4 << 20, 43));
            DefragResult noisy = Expect.Defrag(random, "-Compress Zstd");
            Assert.False(noisy.Skipped);
            Assert.DoesNotContain(Infrastructure.Filefrag.Extents(random), e => e.Flags.Contains("encoded"));
            Assert.Contains("0 B of it is stored compressed, the rest is not (btrfs stores data that does not shrink as it is", noisy.Reason, StringComparison.Ordinal);

            // Where it came out in more pieces than it was in, the result says so (a hostile review: 1 -> 13 fragments,
            // reported as any other rewrite); where not, nothing is said of it.
            Assert.Equal(noisy.FragmentsAfter > noisy.FragmentsBefore, noisy.Reason.Contains($"it now has more fragments than before ({noisy.FragmentsBefore} -> {noisy.FragmentsAfter}): btrfs compresses in pieces of at most 128 KiB", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void CompressDefragmentsANoCowFileWithoutCompressingItAndSaysWhy()
        {
            // btrfs never compresses a No_COW file. Before: -WhatIf promised "Rewrite and compress", every run rewrote
            // all of it again, stored it as it was, and the reason blamed the data. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "compress-nocow");
            Shell.Run("chattr", "+C", dir);
            string whole = Path.Combine(dir, "log.txt");
            FileBuilder.WriteNew(whole, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 100_000).Select(i => $"entry {i}: all is well\n"))));
            string fragmented = Path.Combine(dir, "db.img");
            using (var w = new FileStream(fragmented, FileMode.CreateNew, FileAccess.Write))
            {
                // Backwards in 64 KiB pieces with a sync each: every piece lands in its own extent (No_COW overwrites in place).
                for (int i = 31; i >= 0; i--)
                {
                    w.Position = i * 65536L;
                    w.Write(FileBuilder.RandomBytes(65536, 100 + i));
                    w.Flush(flushToDisk: true);
                }
            }

            BtrfsProgs.Sync(dir);
            Assert.True(FileFacts.HasNoCow(whole) && FileFacts.HasNoCow(fragmented));
            FileFacts before = FileFacts.Of(whole);
            long[] physical = Infrastructure.Filefrag.Extents(whole).Select(e => e.Physical).ToArray();
            string hash = FileFacts.Hash(fragmented);
            int extentsBefore = Infrastructure.Filefrag.Extents(fragmented).Count;

            PwshResult whatIf = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f, $g -Compress Zstd -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = whole, ["g"] = fragmented }, captureHost: true);
            Assert.Empty(whatIf.Errors);
            Assert.DoesNotContain("Rewrite and compress", whatIf.HostText, StringComparison.Ordinal);
            Assert.Contains("which btrfs never compresses: defragmented as without -Compress", whatIf.HostText.Replace("\n", " "), StringComparison.Ordinal);

            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f, $g -Compress Zstd", ("f", whole), ("g", fragmented));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            System.Collections.Generic.List<DefragResult> results = r.Objects<DefragResult>();
            Assert.Equal(2, results.Count);

            // Nothing to join: left as it is, not rewritten to be stored as it was.
            Assert.True(results[0].Skipped);
            Assert.Equal(DefragSkipReason.NothingToDo, results[0].SkipReason);
            Assert.Contains("No_COW (chattr +C), which btrfs never compresses", results[0].Reason, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(whole));
            Assert.Equal(physical, Infrastructure.Filefrag.Extents(whole).Select(e => e.Physical).ToArray());

            // Fragmented: defragmented as without -Compress, uncompressed, and the reason says why.
            Assert.False(results[1].Skipped);
            Assert.StartsWith("No_COW (chattr +C), which btrfs never compresses: defragmented as without -Compress: rewrote", results[1].Reason, StringComparison.Ordinal);
            Assert.True(Infrastructure.Filefrag.Extents(fragmented).Count < extentsBefore);
            Assert.DoesNotContain(Infrastructure.Filefrag.Extents(fragmented), e => e.Flags.Contains("encoded"));
            Assert.Equal(hash, FileFacts.Hash(fragmented));
            Assert.True(FileFacts.HasNoCow(fragmented));
        }

        [SkippableFact]
        public void ANoCowImageIsDefragmented()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "nocow");
            Shell.Run("chattr", "+C", dir);
            string file = Path.Combine(dir, "vm.img");
            // Written backwards in 64 KiB pieces with a sync each: every piece lands in its own extent.
            using (var w = new FileStream(file, FileMode.CreateNew, FileAccess.Write))
            {
                for (int i = 63; i >= 0; i--)
                {
                    w.Position = i * 65536L;
                    w.Write(FileBuilder.RandomBytes(65536, i));
                    w.Flush(flushToDisk: true);
                }
            }

            Assert.True(FileFacts.HasNoCow(file));
            string hash = FileFacts.Hash(file);
            long before = Filefrag(file);
            Assert.True(before > 10, $"only {before} extents");
            DefragResult r = Expect.Defrag(file);
            Assert.True(Filefrag(file) < before);
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(Filefrag(file), r.ExtentsAfter);
        }

        [SkippableFact]
        public void ImmutableIsSkippedWithAWarningAndReadOnlySnapshotsAndFilesystemsWithoutDefragAreErrors()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "refuse");
            string immutable = Path.Combine(dir, "i.img");
            FileBuilder.Fragmented(immutable, 1 << 20, 200);
            Shell.Run("chattr", "+i", immutable);
            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            FileBuilder.Fragmented(Path.Combine(sv, "s.img"), 1 << 20, 200);
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", sv, Path.Combine(dir, "snap"));
            string inSnapshot = Path.Combine(dir, "snap", "s.img");
            string onTmpfs = Path.Combine(fs.NewDirectory(TestFs.Tmpfs, "tmpfs"), "x.img");
            FileBuilder.Chunks(onTmpfs, 4, 4096, 8192);
            string good = Path.Combine(dir, "good.img");
            FileBuilder.Fragmented(good, 1 << 20, 200);
            try
            {
                var facts = new[] { immutable, inSnapshot, onTmpfs }.Select(FileFacts.Of).ToArray();
                PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $a, $b, $c, $d", ("a", immutable), ("b", inSnapshot), ("c", onTmpfs), ("d", good));
                Assert.Equal(new[] { "ReadOnlySnapshot", "OperationNotSupported" }, r.ErrorIds);
                Assert.Equal(inSnapshot, r.Errors[0].TargetObject);
                Assert.Equal(onTmpfs, r.Errors[1].TargetObject);
                Assert.Contains("tmpfs", r.Errors[1].Exception.Message, StringComparison.Ordinal);
                Assert.Contains("immutable", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
                var results = r.Objects<DefragResult>();
                Assert.Equal(2, results.Count);
                Assert.True(results[0].Skipped);
                Assert.Equal(immutable, results[0].Path);
                Assert.False(results[1].Skipped);
                Assert.Equal(good, results[1].Path);
                Assert.Equal(facts, new[] { immutable, inSnapshot, onTmpfs }.Select(FileFacts.Of).ToArray());
            }
            finally
            {
                Shell.Run("chattr", "-i", immutable);
            }
        }

        [SkippableFact]
        public void AConcurrentWriterLosesNoData()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "writer"), "db.img");
            byte[] content = FileBuilder.Fragmented(file, 8 << 20, 2000);
            byte[] patch = FileBuilder.RandomBytes(64 * 1024, 99);
            bool wrote = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                "Invoke-BtrfsDefrag -LiteralPath $f -StepSize 256KB",
                (_, p) =>
                {
                    if (!wrote && p.ParentActivityId >= 0 && p.PercentComplete > 10)
                    {
                        wrote = true;
                        FileBuilder.WriteAt(file, 0, patch);          // a range already defragmented
                        FileBuilder.WriteAt(file, 6 << 20, patch);    // a range not reached yet
                    }
                },
                ("f", file));
            Assert.True(wrote);
            Assert.Empty(r.Errors);
            patch.CopyTo(content, 0);
            patch.CopyTo(content, 6 << 20);
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)), FileFacts.Hash(file));
        }

        [SkippableFact]
        public void StoppingEndsAfterTheCurrentStepWithTheDataIntact()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "stop"), "db.img");
            byte[] content = FileBuilder.Fragmented(file, 16 << 20, 3000);
            bool stopped = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                "Invoke-BtrfsDefrag -LiteralPath $f -StepSize 256KB",
                (ps, p) =>
                {
                    if (!stopped && p.ParentActivityId >= 0 && p.PercentComplete > 5)
                    {
                        stopped = true;
                        ps.BeginStop(null, null);
                    }
                },
                ("f", file));
            Assert.True(stopped);
            Assert.True(r.Stopped);
            Assert.Empty(r.Objects<DefragResult>());
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)), FileFacts.Hash(file));
        }

        [SkippableFact]
        public void RecurseDefragmentsEveryFileBelowAndADirectoryWithoutItIsAnError()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "tree");
            string sub = Directory.CreateDirectory(Path.Combine(root, "sub")).FullName;
            FileBuilder.Fragmented(Path.Combine(root, "a.img"), 2 << 20, 400, seed: 1);
            FileBuilder.Fragmented(Path.Combine(sub, "b.img"), 2 << 20, 400, seed: 2);
            PwshResult plain = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d", ("d", root));
            Assert.Equal(new[] { "PathIsDirectory" }, plain.ErrorIds);
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse", ("d", root));
            Assert.Empty(r.Errors);
            Assert.Equal(2, r.Objects<DefragResult>().Count(x => !x.Skipped && x.ExtentsAfter < x.ExtentsBefore));
        }

        [SkippableFact]
        public void ARangeIsDefragmentedAloneAndCompressionLevelNeedsCompress()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "range"), "db.img");
            FileBuilder.Fragmented(file, 8 << 20, 1500);
            var extents = Infrastructure.Filefrag.Extents(file);
            int tailBefore = extents.Count(e => e.Logical >= 4 << 20);
            DefragResult r = Expect.Defrag(file, "-Offset 0 -Length 4MB");
            Assert.False(r.Skipped);
            var after = Infrastructure.Filefrag.Extents(file);
            Assert.Equal(tailBefore, after.Count(e => e.Logical >= 4 << 20)); // the second half was not touched
            Assert.True(after.Count(e => e.Logical < 4 << 20) < extents.Count(e => e.Logical < 4 << 20) / 10);

            PwshResult bad = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f -CompressionLevel 3", ("f", file));
            Assert.Equal("CompressionLevelWithoutCompress", bad.ErrorIds.Single());
        }

        [SkippableFact]
        public void ARangeTakesTheExtentsThatBeginAndEndAtItsEndsAsBtrfsFilesystemDefragmentDoes()
        {
            // Before: with the map cut to -Offset/-Length, the extents beginning at the range's start and ending at its
            // end were taken for pieces of longer ones and left out: [32K, 64K) of 4 KiB extents became 8, 6 blocks, 15,
            // where `btrfs filesystem defragment -s 32K -l 32K` makes one. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "rangeends");
            string ours = Path.Combine(dir, "r.bin"), theirs = Path.Combine(dir, "r2.bin");
            foreach (string f in new[] { ours, theirs })
            {
                // 32 blocks of 4 KiB written last to first, each synced: 32 extents, none next to the one before it.
                Shell.Run("bash", "-c", $"for i in $(seq 31 -1 0); do dd if=/dev/urandom of='{f}' bs=4k count=1 seek=$i conv=notrunc oflag=sync status=none; done");
            }

            Assert.Equal(32, Infrastructure.Filefrag.Extents(ours).Count);
            string hash = FileFacts.Hash(ours);
            DefragResult r = Expect.Defrag(ours, "-Offset 32KB -Length 32KB");
            Assert.Equal(32L << 10, r.BytesRewritten);
            Shell.Run("btrfs", "filesystem", "defragment", "-s", "32K", "-l", "32K", theirs);
            Shell.Run("sync");

            var after = Infrastructure.Filefrag.Extents(ours);
            Assert.Contains(after, e => e.Logical == 32 << 10 && e.Length == 32 << 10);
            Assert.Equal(Infrastructure.Filefrag.Extents(theirs).Count, after.Count);
            Assert.Equal(25, after.Count);
            Assert.Equal(hash, FileFacts.Hash(ours));
        }

        [SkippableFact]
        public void TheTableViewShowsBeforeAndAfter()
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "view"), "db.img");
            FileBuilder.Fragmented(file, 2 << 20, 300);
            PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $p | Out-Host", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = file }, captureHost: true);
            Assert.Empty(r.Errors);
            Assert.Matches(@"\d+ → \d+", r.HostText);
            foreach (string part in new[] { "Extents", "Rewritten", "KeptShared", "Unshared", "Reason", "db.img", "MiB", "rewrote" })
            {
                Assert.Contains(part, r.HostText, StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void AppendOnlyInlineOnlyAndActiveSwapfilesAreSkippedWithAWarning()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "skips");
            string append = Path.Combine(dir, "a.img");
            FileBuilder.Fragmented(append, 1 << 20, 200);
            Shell.Run("chattr", "+a", append);
            string inline = Path.Combine(dir, "tiny.conf");
            FileBuilder.WriteNew(inline, new byte[] { 1, 2, 3 });
            Shell.Run("sync");
            Assert.Contains("inline", Assert.Single(Infrastructure.Filefrag.Extents(inline)).Flags);
            using var swap = new ActiveSwapfile(dir);
            try
            {
                var facts = new[] { append, inline, swap.Path }.Select(FileFacts.Of).ToArray();
                PwshResult r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $a, $b, $c -ExtentThreshold 1GB", ("a", append), ("b", inline), ("c", swap.Path));
                Assert.Empty(r.Errors);
                Assert.Equal(3, r.Warnings.Count);
                Assert.Contains("append-only", r.Warnings[0].Message, StringComparison.Ordinal);
                Assert.Contains("inline-only", r.Warnings[1].Message, StringComparison.Ordinal);
                Assert.Contains("swapfile", r.Warnings[2].Message, StringComparison.Ordinal);
                Assert.All(r.Objects<DefragResult>(), x => Assert.True(x.Skipped));
                Assert.Equal(facts, new[] { append, inline, swap.Path }.Select(FileFacts.Of).ToArray());

                // Found by a walk, an inline-only file (small files by the thousand in a home directory) is said with
                // -Verbose and its result only (before: a warning each; a hostile review); the others still warn.
                PwshResult walked = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $d -Recurse -ExtentThreshold 1GB -Verbose", ("d", dir));
                Assert.Empty(walked.Errors);
                Assert.DoesNotContain(walked.Warnings, w => w.Message.Contains("inline-only", StringComparison.Ordinal));
                Assert.Contains(walked.Warnings, w => w.Message.Contains("append-only", StringComparison.Ordinal));
                Assert.Contains(walked.Verbose, v => v.Message.Contains("tiny.conf", StringComparison.Ordinal) && v.Message.Contains("inline-only", StringComparison.Ordinal));
                Assert.Equal(DefragSkipReason.InlineOnly, walked.Objects<DefragResult>().Single(x => x.Path == inline).SkipReason);
                Assert.Equal(facts, new[] { append, inline, swap.Path }.Select(FileFacts.Of).ToArray());
            }
            finally
            {
                Shell.Run("chattr", "-a", append);
            }
        }

        [SkippableFact]
        public void WithoutWritePermissionItIsAccessDenied()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "perm");
            string file = Path.Combine(dir, "root.img");
            FileBuilder.Fragmented(file, 1 << 20, 200);
            File.SetUnixFileMode(file, (UnixFileMode)0x1A4); // 0644, owned by root
            FileFacts before = FileFacts.Of(file);
            PwshResult r;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Pwsh.Run("Invoke-BtrfsDefrag -LiteralPath $f", ("f", file));
            }

            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("AccessDenied,Btrfs.Commands.InvokeBtrfsDefragCommand", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.PermissionDenied, e.CategoryInfo.Category);
            Assert.Contains("write permission", e.Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(file));
        }

        [SkippableFact]
        public void AStopAndContinueStormDoesNotEndTheRewriteEarly()
        {
            // Before: a signal for the thread (kill -STOP/-CONT, Ctrl+Z and fg, a suspend) ends the kernel's
            // defragmentation of a range early, and it answers success (or EAGAIN, when nothing was rewritten yet): the
            // file was reported done with 29,443 of its 29,815 extents left. Found by a code review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "defrag-storm");
            string file = Path.Combine(dir, "vm.img");
            byte[] content = FileBuilder.Fragmented(file, 192 << 20, 16000, seed: 41);
            long before = Filefrag(file);
            Assert.True(before > 5000, $"only {before} extents");
            Shell.Run("sync");
            File.WriteAllText("/proc/sys/vm/drop_caches", "3"); // read from the device: a slow rewrite, long enough for the storm
            RealPwsh.Result r = RealPwsh.Run(
                """
                $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
                $psi.ArgumentList.Add('-c')
                $psi.ArgumentList.Add("for i in `$(seq 1 20000); do kill -STOP $PID; kill -CONT $PID; sleep 0.002; done")
                $storm = [System.Diagnostics.Process]::Start($psi)
                Start-Sleep -Milliseconds 200
                $result = Invoke-BtrfsDefrag -LiteralPath $f -Confirm:$false
                $storm | Stop-Process -ErrorAction SilentlyContinue
                "@@$($result.ExtentsAfter) $($Error.Count) $(-not $storm.HasExited -or $storm.ExitCode -ne 0)"
                "@@$($result.Reason)"
                """,
                null,
                ("f", file));
            string[] marked = r.Marked;
            Assert.True(marked.Length == 2, r.StdOut + r.StdErr);
            System.Text.RegularExpressions.Match stops = System.Text.RegularExpressions.Regex.Match(marked[1], @"stopped early (\d+) time");
            Assert.True(stops.Success, marked[1]); // the storm did stop the kernel, and it was asked again
            string[] fields = marked[0].Split(' ');
            Assert.Equal("0", fields[1]);
            Assert.Equal("True", fields[2]); // the storm was still going when the rewrite ended
            long after = Filefrag(file);
            // Each stop leaves at most two boundaries where the rest was asked for again: not thousands.
            int resumed = int.Parse(stops.Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(after <= 4 + (3 * resumed), $"{after} extents left of {before} after {resumed} stop(s) (the cmdlet said {fields[0]})");
            Assert.Equal(after.ToString(CultureInfo.InvariantCulture), fields[0]);
            Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)), FileFacts.Hash(file));
        }
    }
}
