namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Show-ExtentMap draws purpose-built layouts cell by cell, in plain text unless colours are allowed.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ShowExtentMapTests(LoopFileSystems fs)
    {
        private const int MiB = 1 << 20;

        private static List<string> Lines(string script, params (string, object?)[] vars)
        {
            PwshResult r = Pwsh.Run(script, vars);
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            // A summary wrapped over lines (at the window's width) is one line here, so the rows keep their places.
            var lines = new List<string>();
            ExtentMapLineKind? previous = null;
            foreach (object o in r.Output.Select(o => o.BaseObject))
            {
                if (o is ExtentMapLine { Kind: ExtentMapLineKind.Summary } s && previous == ExtentMapLineKind.Summary)
                {
                    lines[^1] += " " + s.Text;
                }
                else
                {
                    lines.Add(o is ExtentMapLine line ? line.Text : (string)o);
                }

                previous = (o as ExtentMapLine)?.Kind;
            }

            return lines;
        }

        /// <summary>
        /// 16 MiB: a fragmented quarter (4 KiB extents, every other one written first), a quarter in one
        /// extent, a hole, and a quarter shared with another file by reflink.
        /// </summary>
        internal static string Layout(string dir)
        {
            string file = Path.Combine(dir, "layout.img");
            using (var f = new FileStream(file, FileMode.CreateNew, FileAccess.Write))
            {
                foreach (int pass in new[] { 0, 1 })
                {
                    for (int block = pass; block < 1024; block += 2)
                    {
                        f.Position = block * 4096L;
                        f.Write(FileBuilder.RandomBytes(4096, block));
                        f.Flush(flushToDisk: true);
                    }
                }

                f.Position = 4 * MiB;
                f.Write(FileBuilder.RandomBytes(4 * MiB, 1));
                f.Position = 12 * MiB;
                f.Write(FileBuilder.RandomBytes(4 * MiB, 2));
                f.Flush(flushToDisk: true);
            }

            string other = Path.Combine(dir, "other.img");
            Shell.Run("touch", other);
            Shell.Run("xfs_io", "-c", $"reflink {file} {12 * MiB} 0 {4 * MiB}", other);
            Shell.Run("sync");
            return file;
        }

        [SkippableFact]
        public void AHoleASharedQuarterAndAFragmentedQuarterAreDrawnWhereTheyAre()
        {
            string file = Layout(fs.NewDirectory(TestFs.Btrfs, "map"));
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            long extents = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", file)).Output.Count;
            Assert.Equal(6, lines.Count); // path, summary, the row, its marks, two legend lines
            Assert.Equal(file, lines[0]);
            Assert.StartsWith($"16.0 MiB in {extents:N0} extents, ", lines[1], StringComparison.Ordinal);
            Assert.Equal("░░░░████····████", lines[2]);
            Assert.Equal("            SSSS", lines[3]);
            Assert.StartsWith("█ one extent", lines[4], StringComparison.Ordinal);
            Assert.StartsWith("Marked under a cell: S shared", lines[5], StringComparison.Ordinal);
            Assert.Contains("4.00 MiB shared; one cell = 1.00 MiB", lines[1], StringComparison.Ordinal);
            Assert.Contains("░ 16 or more", lines[4], StringComparison.Ordinal);
            Assert.All(lines, l => Assert.True(l.Length <= 80, l));

            // Two rows of eight: the same cells, wrapped; a row without marks has no marks line.
            Assert.Equal(new[] { "░░░░████", "····████", "    SSSS" }, Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 2", ("p", file)).Skip(2).Take(3));

            // From the pipeline, holes included or not: the same picture.
            Assert.Equal(lines, Lines("Get-BtrfsExtent -LiteralPath $p -IncludeHole | Show-ExtentMap -Width 16 -Rows 1", ("p", file)));
            Assert.Equal(lines, Lines("Get-BtrfsExtent -LiteralPath $p | Show-ExtentMap -Width 16 -Rows 1", ("p", file)));
        }

        [SkippableFact]
        public void ExtentsReadBackByImportClixmlAreDrawnAsSavedNotAsTheFileIsNow()
        {
            // Before: a read-back extent bound -LiteralPath by its PSPath, and the whole live file was drawn.
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-saved");
            string file = Layout(dir), saved = Path.Combine(dir, "shared.xml");
            PwshResult save = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p | Where-Object IsShared | Export-Clixml -LiteralPath $x", ("p", file), ("x", saved));
            Assert.Empty(save.Errors);

            // The shared quarter stops being shared: only what was saved can still draw it so.
            FileBuilder.WriteAt(file, 12 * MiB, FileBuilder.RandomBytes(4 * MiB, 3));
            Shell.Run("sync");
            Assert.Empty(Pwsh.Run("Get-BtrfsExtent -LiteralPath $p | Where-Object IsShared", ("p", file)).Output);

            foreach (string script in new[] { "Import-Clixml -LiteralPath $x | Show-ExtentMap -Width 16 -Rows 1", "Show-ExtentMap -InputObject (Import-Clixml -LiteralPath $x) -Width 16 -Rows 1" })
            {
                List<string> lines = Lines(script, ("x", saved));
                Assert.Equal(file, lines[0]);
                Assert.Contains("4.00 MiB shared", lines[1], StringComparison.Ordinal);
                Assert.Equal("············████", lines[2]);
                Assert.Equal("            SSSS", lines[3]);
            }

            // Its path a FIFO now: one error, as Get-BtrfsExtentOwner and Test-NoCow give (before: an empty map, "0 B in
            // 1 extent". A hostile test), and the FIFO is never opened (no hang).
            File.Delete(file);
            Shell.Run("mkfifo", file);
            PwshResult r = Pwsh.Run("Import-Clixml -LiteralPath $x | Show-ExtentMap -Width 16 -Rows 1", ("x", saved));
            Assert.Equal("NotRegularFile", Assert.Single(r.ErrorIds));
            Assert.Equal(file, r.Errors[0].TargetObject);
            Assert.Empty(r.Output);
        }

        [SkippableTheory]
        [InlineData(40, 39)] // one less than the window, so a row never wraps
        [InlineData(5, 8)] // a window narrower than the least width: the least width, not the default
        [InlineData(0, 79)] // a window of no width is none known
        [InlineData(null, 79)] // no raw UI (a job, a remote session without a terminal)
        public void RowsFollowTheWindowWidth(int? window, int cells)
        {
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-window"), "data.bin");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(1 << 20, 3));
            PwshResult r = Pwsh.Run("Show-ExtentMap -LiteralPath $p -Rows 1", new Dictionary<string, object?> { ["p"] = file }, captureHost: true, windowWidth: window);
            Assert.Empty(r.Errors);
            List<ExtentMapLine> lines = r.Output.Select(o => (ExtentMapLine)o.BaseObject).ToList();
            Assert.Equal(file, lines[0].Text);
            Assert.Equal(cells, lines.First(l => l.Kind == ExtentMapLineKind.Cells).Text.Length);
            Assert.All(lines.Where(l => l.Kind == ExtentMapLineKind.Summary), l => Assert.True(l.Text.Length <= cells, l.Text)); // the summary wraps at the same width
        }

        [SkippableFact]
        public void AFewBlocksInALargeSparseFileStillShow()
        {
            // Before: a cell less than half full of data was drawn as a hole, so a 64 MiB sparse image with
            // 8 KiB written in two places drew as nothing but holes. Found by a newcomer review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-sparse");
            string file = Path.Combine(dir, "sparse.img");
            FileBuilder.Sparse(file, 64 * MiB);
            FileBuilder.WriteAt(file, (9 * MiB) + 4096, FileBuilder.RandomBytes(4096, 1));
            FileBuilder.WriteAt(file, 40 * MiB, FileBuilder.RandomBytes(4096, 2));
            Shell.Run("cp", "--reflink=always", file, Path.Combine(dir, "copy.img"));
            Shell.Run("sync");
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Equal("··▁·······▁·····", lines[2]); // one cell = 4 MiB
            Assert.Equal("  S       S", lines[3]); // what little data there is, is shared with the copy
            Assert.Contains("▁ under half data", lines[4], StringComparison.Ordinal);
            Assert.All(lines, l => Assert.True(l.Length <= 80, l));
        }

        [SkippableFact]
        public void ABlockWrittenAtTheEndOfTheLargestFileEndsAtTheLargestOffsetAndIsDrawn()
        {
            // Before: the block's end, 2^63, did not fit a long: EndOffset was negative, the map drew nothing but holes
            // while saying "1 extent", and HoleBytes was one byte short of the hole before the block. A hostile test.
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-largest");
            string file = Path.Combine(dir, "largest.img");
            Shell.Run("truncate", "-s", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), file);
            FileBuilder.WriteAt(file, long.MaxValue - 1, new byte[] { 0x7a });
            Shell.Run("sync");
            FilefragExtent only = Assert.Single(Filefrag.Extents(file));
            Assert.Equal(long.MaxValue - 4095, only.Logical); // filefrag: the last 4 KiB block, up to the largest offset
            Assert.Equal(4096, only.Length);

            PwshResult r = Pwsh.Run(
                "Get-BtrfsExtent -LiteralPath $p -IncludeHole; Get-BtrfsExtent -LiteralPath $p -Exact; Measure-Fragmentation -LiteralPath $p",
                ("p", file));
            Assert.Empty(r.Errors);
            var extents = r.Output.Select(o => o.BaseObject).OfType<FileExtent>().ToList();
            Assert.Equal(2, extents.Count);
            Assert.True(extents[0].IsHole);
            Assert.Equal(only.Logical, extents[0].EndOffset);
            Assert.Equal(only.Logical, extents[1].LogicalOffset);
            Assert.Equal(long.MaxValue, extents[1].EndOffset);
            BtrfsExtentItem item = Assert.Single(r.Output.Select(o => o.BaseObject).OfType<BtrfsExtentItem>());
            Assert.Equal(long.MaxValue, item.EndOffset);
            FragmentationReport report = Assert.Single(r.Output.Select(o => o.BaseObject).OfType<FragmentationReport>());
            Assert.Equal(only.Logical, report.HoleBytes);
            Assert.Equal(1, report.ExtentCount);

            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", file));
            Assert.Equal("·······▁", lines[2]); // one cell = 1 EiB; the last holds the block

            // Its conversion copies the block (btrfs puts the hole after it at 2^63, which lseek gives back negative with no
            // error: before, "Cannot read the layout of ...: Success"; a hostile test).
            PwshResult converted = Pwsh.Run("ConvertTo-NoCow -LiteralPath $p -Confirm:$false", ("p", file));
            Assert.True(converted.Errors.Count == 0, string.Join("\n", converted.Errors));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(long.MaxValue, new FileInfo(file).Length);
            using (var f = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0))
            {
                f.Position = long.MaxValue - 2; // the last two bytes (a read reaching past 2^63 is EINVAL)
                var last = new byte[2];
                f.ReadExactly(last);
                Assert.Equal(new byte[] { 0, 0x7a }, last);
            }

            FilefragExtent copied = Assert.Single(Filefrag.Extents(file));
            Assert.Equal(only.Logical, copied.Logical);

            // Too many blocks to search even at the largest block size: no advice of a larger one (a hostile test).
            PwshResult search = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $p -BlockSize 8388608", ("p", file));
            Assert.Contains("Even the largest -BlockSize (8388608) leaves too many", Assert.Single(search.Errors).Exception.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ACellIsAnExactShareOfTheSizeSoABoundaryFallsInTheCellItIsIn()
        {
            // Before: the cell size was rounded up (12.8 KiB for 512 KiB over 40 cells), the error added up along the row,
            // and the fifth cell, wholly inside the first extent, was drawn as holding two. Found by a hostile review.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-exact"), "data.bin");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(512 << 10, 5));
            FileBuilder.WriteAt(file, 64 << 10, FileBuilder.RandomBytes(16 << 10, 6)); // extents [0, 64K) [64K, 80K) [80K, 512K)
            Shell.Run("sync");
            Assert.Equal(new long[] { 0, 64 << 10, 80 << 10 }, Infrastructure.Filefrag.Extents(file).Select(e => e.Logical));
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 40 -Rows 1", ("p", file));

            // Cells of 13,107.2 bytes: the first five end at 64 KiB, the sixth holds the second extent, the seventh the
            // boundary at 80 KiB.
            Assert.Equal(new string('█', 6) + "▓" + new string('█', 33), lines[2]);
            Assert.EndsWith("one cell ≈ 12.8 KiB", lines[1], StringComparison.Ordinal);
        }

        [SkippableFact]
        public void AFileNearTheLargestSizeIsDrawnWithoutAnOverflow()
        {
            // Before: "Arithmetic operation resulted in an overflow" for a sparse file of 2^63 - 2^50 bytes (the cell
            // size was rounded up by adding first). Found by a hostile review.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-huge"), "huge.img");
            long size = long.MaxValue - (1L << 50) + 1;
            FileBuilder.Sparse(file, size);
            FileBuilder.WriteAt(file, size - (1 << 20), FileBuilder.RandomBytes(1 << 20, 81)); // the last MiB
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Equal("···············▁", lines[2]);
            Assert.All(lines, l => Assert.True(l.Length <= 80, l));
        }

        [SkippableFact]
        public void AFragmentedFileCoveredByASnapshotStillShowsItsFragmentation()
        {
            // Before: "S" took the whole cell, so a fragmented file under a snapshot drew as solid SSSS.
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-snapshot");
            string file = Layout(dir);
            Shell.Run("cp", "--reflink=always", file, Path.Combine(dir, "snapshot.img"));
            Shell.Run("sync");
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Equal("░░░░████····████", lines[2]);
            Assert.Equal("SSSSSSSS    SSSS", lines[3]);
            Assert.Contains("12.0 MiB shared", lines[1], StringComparison.Ordinal);
        }

        [SkippableFact]
        public void CompressedDataThatIsAlsoSharedIsMarkedAsBothAndTheSummaryWrapsBetweenWords()
        {
            // Found by a hostile review: S hid Z, so no compressed data in a snapshotted subvolume could be seen; and at
            // 80 columns the summary of a file of 2,000 extents broke between "12.7 Ki" and "B".
            string dir = fs.NewDirectory(TestFs.BtrfsZstd, "map-shared-compressed");
            string text = Path.Combine(dir, "log.txt");
            FileBuilder.WriteNew(text, FileBuilder.Text(MiB));
            Shell.Run("cp", "--reflink=always", text, Path.Combine(dir, "snapshot.txt"));
            Shell.Run("sync");
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", text));
            Assert.Equal("XXXXXXXX", lines[3]);
            Assert.Contains(lines, l => l.Contains("X shared+compressed", StringComparison.Ordinal));

            string frag = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-summary-wrap"), "frag.bin");
            FileBuilder.Chunks(frag, 2000, 4096, 8192, fsyncEach: true);
            Shell.Run("cp", "--reflink=always", frag, frag + ".copy");
            foreach (int window in new[] { 80, 40 })
            {
                PwshResult r = Pwsh.Run("Show-ExtentMap -LiteralPath $p", new Dictionary<string, object?> { ["p"] = frag }, captureHost: true, windowWidth: window);
                Assert.Empty(r.Errors);
                List<ExtentMapLine> all = r.Output.Select(o => (ExtentMapLine)o.BaseObject).ToList();
                string[] summary = all.Where(l => l.Kind == ExtentMapLineKind.Summary).Select(l => l.Text).ToArray();
                Assert.True(summary.Length >= (window < 70 ? 2 : 1), $"{window} columns: one summary line of {summary[0].Length}: {summary[0]}");
                Assert.All(summary, l => Assert.True(l.Length <= window - 1, $"{window} columns: {l}"));
                Assert.Matches(@"^15\.6 MiB in 2,000 extents, [\d,]+ fragments?, 7\.81 MiB shared; one cell", string.Join(" ", summary));
                Assert.Matches(@"one cell [≈=] \d+(\.\d+)? (B|KiB)$", string.Join(" ", summary)); // a size never cut from its unit
                string[] legend = all.Where(l => l.Kind == ExtentMapLineKind.Legend).Select(l => l.Text).ToArray();
                Assert.All(legend, l => Assert.True(l.Length <= window - 1, $"{window} columns: {l}"));
                Assert.Equal(string.Join("  ", ExtentPicture.LegendLines), string.Join("  ", legend)); // wrapped between entries, none cut
            }
        }

        [SkippableFact]
        public void TheLegendIsWrittenOnceAfterEveryFileOfACall()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-legend");
            string a = Path.Combine(dir, "a.img"), b = Path.Combine(dir, "b.img");
            FileBuilder.WriteNew(a, FileBuilder.RandomBytes(MiB, 1));
            FileBuilder.WriteNew(b, FileBuilder.RandomBytes(MiB, 2));
            PwshResult r = Pwsh.Run("Show-ExtentMap -LiteralPath $a, $b -Width 8 -Rows 1; Get-Item -LiteralPath $a, $b | Show-ExtentMap -Width 8 -Rows 1", ("a", a), ("b", b));
            Assert.Empty(r.Errors);
            List<ExtentMapLine> all = r.Output.Select(o => (ExtentMapLine)o.BaseObject).ToList();
            Assert.Equal(
                new[] { "File", "Summary", "Cells", "File", "Summary", "Cells", "Legend", "Legend", "File", "Summary", "Cells", "File", "Summary", "Cells", "Legend", "Legend" },
                all.Select(l => l.Kind.ToString()));
            Assert.Equal(new[] { a, a, a, b, b, b }, all.Take(6).Select(l => l.Path));
            Assert.All(all.Where(l => l.Kind == ExtentMapLineKind.Legend), l => Assert.True(l.Text.Length <= 80, l.Text));
        }

        [SkippableFact]
        public void ExtentsPipedOutOfOrderOrInterleavedAreDrawnWithAWarning()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-order");
            string a = Path.Combine(dir, "a.img"), b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 3, 64 * 1024, 128 * 1024, fsyncEach: true);
            FileBuilder.Chunks(b, 3, 64 * 1024, 128 * 1024, fsyncEach: true, seed: 2);

            // In file order, one file after the other: no warning.
            PwshResult ordered = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a, $b | Show-ExtentMap -Width 8 -Rows 1", ("a", a), ("b", b));
            Assert.Empty(ordered.Errors);
            Assert.Empty(ordered.Warnings);

            // Sorted by length descending within one file: out of file order.
            PwshResult sorted = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a | Sort-Object LogicalOffset -Descending | Show-ExtentMap -Width 8 -Rows 1", ("a", a));
            Assert.Contains("arrive out of file order", Assert.Single(sorted.Warnings).Message, StringComparison.Ordinal);
            Assert.Single(sorted.Output, o => ((ExtentMapLine)o.BaseObject).Kind == ExtentMapLineKind.File);

            // Interleaved: a, b, a: a is drawn twice and the second time is warned about.
            PwshResult mixed = Pwsh.Run("@(Get-BtrfsExtent -LiteralPath $a)[0], @(Get-BtrfsExtent -LiteralPath $b)[0], @(Get-BtrfsExtent -LiteralPath $a)[1] | Show-ExtentMap -Width 8 -Rows 1", ("a", a), ("b", b));
            Assert.Contains($"The extents of '{a}' arrive again", Assert.Single(mixed.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(new[] { a, b, a }, mixed.Output.Select(o => (ExtentMapLine)o.BaseObject).Where(l => l.Kind == ExtentMapLineKind.File).Select(l => l.Path));
        }

        [SkippableFact]
        public void ColoursComeFromTheViewAndOnlyWhereOutputRenderingAllowsThem()
        {
            string file = Layout(fs.NewDirectory(TestFs.Btrfs, "map-colour"));
            // $PSStyle is one object for the whole process: set only in a pwsh of its own, never in the shared test host.
            string Rendered(string rendering, string then)
            {
                // The escapes are made visible before the text reaches stdout (pwsh's host drops them from redirected output).
                RealPwsh.Result r = RealPwsh.Run($"$PSStyle.OutputRendering = '{rendering}'; Show-ExtentMap -LiteralPath $P -Width 16 -Rows 1 | {then} | ForEach-Object {{ $_.Replace([string][char]27, '\\e') }}", null, ("P", file));
                Assert.True(r.ExitCode == 0 && r.StdErr.Length == 0, r.StdOut + r.StdErr);
                return r.StdOut.Replace("\\e", "\u001b", StringComparison.Ordinal);
            }

            string ansi = Rendered("Ansi", "Out-String");
            Assert.Contains("\u001b[32m░░░░████\u001b[90m····\u001b[36m████\u001b[0m", ansi, StringComparison.Ordinal);
            Assert.Contains("            \u001b[36mSSSS\u001b[0m", ansi, StringComparison.Ordinal);
            Assert.Contains("\u001b[36mS\u001b[0m shared", ansi, StringComparison.Ordinal);
            foreach (string rendering in new[] { "Host", "PlainText" })
            {
                string plain = Rendered(rendering, "Out-String");
                Assert.Contains("░░░░████····████", plain, StringComparison.Ordinal);
                Assert.DoesNotContain("\u001b", plain, StringComparison.Ordinal);
            }

            // The objects themselves are plain text, whatever the setting: Set-Content and -join get no escapes.
            string objects = Rendered("Ansi", "ForEach-Object ToString");
            Assert.Contains("░░░░████····████", objects, StringComparison.Ordinal);
            Assert.DoesNotContain("\u001b", objects, StringComparison.Ordinal);

            // Real pwsh on a terminal (a pty from script(1)), $PSStyle as it comes (Host): colours on the
            // terminal, none in the file that ">" writes. Before: the file got the escapes too.
            string dir = Path.GetDirectoryName(file)!;
            string map = Path.Combine(dir, "map.txt");
            string ps1 = Path.Combine(dir, "map.ps1");
            File.WriteAllText(ps1, $"Import-Module '{RepoPaths.Manifest}'\n'rendering=' + $PSStyle.OutputRendering\nShow-ExtentMap -LiteralPath '{file}' -Width 16 -Rows 1\nShow-ExtentMap -LiteralPath '{file}' -Width 16 -Rows 1 > '{map}'\n'cells=' + (Show-ExtentMap -LiteralPath '{file}' -Rows 1 | Where-Object Kind -eq Cells).Text.Length\n");
            Requires.That(RealPwsh.ToolDirectory is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");
            string terminal = Shell.Run("script", "-qec", $"stty cols 80 rows 24; env -u NO_COLOR TERM=xterm-256color dotnet {Path.Combine(RealPwsh.ToolDirectory!, "pwsh.dll")} -NoProfile -NonInteractive -File {ps1}", "/dev/null");
            Assert.Contains("rendering=Host", terminal, StringComparison.Ordinal);
            Assert.Contains("\u001b[36m████", terminal, StringComparison.Ordinal);

            // Without -Width a row is one cell narrower than the 80-column window: a full-width line would wrap.
            Assert.Contains("cells=79", terminal, StringComparison.Ordinal);
            string text = File.ReadAllText(map);
            Assert.Contains("░░░░████····████", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\u001b", text, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void CompressedUnwrittenOneExtentAndManyExtentFilesAreDrawn()
        {
            string zdir = fs.NewDirectory(TestFs.BtrfsZstd, "map");
            string text = Path.Combine(zdir, "log.txt");
            FileBuilder.WriteNew(text, FileBuilder.Text(MiB));
            Assert.Equal("ZZZZZZZZ", Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", text))[3]);

            string dir = fs.NewDirectory(TestFs.Xfs, "map");
            string pre = Path.Combine(dir, "pre.img");
            Shell.Run("fallocate", "-l", "8M", pre);
            FileBuilder.WriteAt(pre, 0, FileBuilder.RandomBytes(2 * MiB, 3));
            Assert.Equal(new[] { "████████", "  uuuuuu" }, Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", pre)).Skip(2).Take(2));

            string one = Path.Combine(dir, "one.img");
            FileBuilder.WriteNew(one, FileBuilder.RandomBytes(3 * MiB, 4));
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 10", ("p", one));
            Assert.Equal(2 + 8 + 2, lines.Count); // path, summary, 8 rows of 10 cells (nothing to mark), legend
            Assert.All(lines.Skip(2).Take(8), l => Assert.Equal(new string('█', 10), l));

            string many = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-many"), "many.img");
            FileBuilder.Chunks(many, 20_000, 4096, 8192, fsyncEach: false);
            List<string> big = Lines("Show-ExtentMap -LiteralPath $p -Width 40 -Rows 2", ("p", many));
            Assert.Equal(6, big.Count);
            Assert.StartsWith("156 MiB in 20,000 extents", big[1], StringComparison.Ordinal);
            Assert.All(big.Skip(2).Take(2), l => Assert.Equal(40, l.Length));
        }

        [SkippableFact]
        public void BadInputIsOneErrorEachAndTheNextFileIsStillDrawn()
        {
            string tmpfs = Path.Combine(fs.NewDirectory(TestFs.Tmpfs, "map"), "t.img");
            FileBuilder.WriteNew(tmpfs, FileBuilder.RandomBytes(64 << 10, 1));
            string dir = fs.NewDirectory(TestFs.Btrfs, "map-errors");
            string good = Path.Combine(dir, "good.img");
            FileBuilder.WriteNew(good, FileBuilder.RandomBytes(MiB, 2));
            string missing = Path.Combine(dir, "missing.img");

            PwshResult r = Pwsh.Run("Show-ExtentMap -LiteralPath $t, $m, $d, $g -Width 8 -Rows 1", ("t", tmpfs), ("m", missing), ("d", dir), ("g", good));
            Assert.Equal(new[] { "OperationNotSupported", "PathNotFound", "PathIsDirectory" }, r.ErrorIds);
            Assert.Equal(new object[] { tmpfs, missing, dir }, r.Errors.Select(e => e.TargetObject));
            Assert.Contains("tmpfs", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(5, r.Output.Count); // path, summary, one row, and the legend
            Assert.Equal(good, r.Output[0].ToString());

            // A name with a newline or an escape sequence is one line, its control characters shown as '?' (before: the
            // newline split the line, so a name could fake a line of its own; a hostile test); Path keeps the name.
            string odd = Path.Combine(dir, "nl\nline2\u001b]0;x\u0007.img");
            FileBuilder.WriteNew(odd, FileBuilder.RandomBytes(64 << 10, 3));
            r = Pwsh.Run("Show-ExtentMap -LiteralPath $o -Width 8 -Rows 1", ("o", odd));
            Assert.Empty(r.Errors);
            var first = (ExtentMapLine)r.Output[0].BaseObject;
            Assert.Equal(Path.Combine(dir, "nl?line2?]0;x?.img"), first.Text);
            Assert.Equal(odd, first.Path);
        }
    }
}
