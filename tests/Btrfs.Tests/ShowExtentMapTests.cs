namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using Btrfs.Core;
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
            return r.Output.Select(o => (string)o.BaseObject).ToList();
        }

        /// <summary>
        /// 16 MiB: a fragmented quarter (4 KiB extents, every other one written first), a quarter in one
        /// extent, a hole, and a quarter shared with another file by reflink.
        /// </summary>
        private static string Layout(string dir)
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
        public void AHoleASharedHalfAndAFragmentedQuarterAreDrawnWhereTheyAre()
        {
            string file = Layout(fs.NewDirectory(TestFs.Btrfs, "map"));
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Equal(3, lines.Count);
            Assert.Equal("░░░░████····SSSS", lines[1]);
            long extents = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", file)).Output.Count;
            Assert.StartsWith($"{file}: 16.0 MiB in {extents:N0} extent(s), ", lines[0], StringComparison.Ordinal);
            Assert.Contains("4.00 MiB shared; one cell = 1.00 MiB", lines[0], StringComparison.Ordinal);
            Assert.Contains("░ 16 or more", lines[2], StringComparison.Ordinal);
            Assert.DoesNotContain(lines, l => l.Contains('\u001b', StringComparison.Ordinal));

            // Two rows of eight: the same cells, wrapped.
            Assert.Equal(new[] { "░░░░████", "····SSSS" }, Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 2", ("p", file)).Skip(1).Take(2));

            // From the pipeline, holes included or not: the same picture.
            Assert.Equal(lines, Lines("Get-BtrfsExtent -LiteralPath $p -IncludeHole | Show-ExtentMap -Width 16 -Rows 1", ("p", file)));
            Assert.Equal(lines, Lines("Get-BtrfsExtent -LiteralPath $p | Show-ExtentMap -Width 16 -Rows 1", ("p", file)));
        }

        [SkippableFact]
        public void ColoursComeOnlyWhenOutputRenderingAllowsThem()
        {
            string file = Layout(fs.NewDirectory(TestFs.Btrfs, "map-colour"));
            List<string> ansi = Lines("$PSStyle.OutputRendering = 'Ansi'; Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Contains("\u001b[91m░░░░\u001b[32m████\u001b[90m····\u001b[36mSSSS\u001b[0m", ansi[1], StringComparison.Ordinal);
            Assert.Contains("\u001b[", ansi[2], StringComparison.Ordinal);
            List<string> plain = Lines("$PSStyle.OutputRendering = 'PlainText'; Show-ExtentMap -LiteralPath $p -Width 16 -Rows 1", ("p", file));
            Assert.Equal("░░░░████····SSSS", plain[1]);
            Assert.DoesNotContain(plain, l => l.Contains('\u001b', StringComparison.Ordinal));
        }

        [SkippableFact]
        public void CompressedUnwrittenOneExtentAndManyExtentFilesAreDrawn()
        {
            string zdir = fs.NewDirectory(TestFs.BtrfsZstd, "map");
            string text = Path.Combine(zdir, "log.txt");
            FileBuilder.WriteNew(text, FileBuilder.Text(MiB));
            Assert.Equal("ZZZZZZZZ", Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", text))[1]);

            string dir = fs.NewDirectory(TestFs.Xfs, "map");
            string pre = Path.Combine(dir, "pre.img");
            Shell.Run("fallocate", "-l", "8M", pre);
            FileBuilder.WriteAt(pre, 0, FileBuilder.RandomBytes(2 * MiB, 3));
            Assert.Equal("██uuuuuu", Lines("Show-ExtentMap -LiteralPath $p -Width 8 -Rows 1", ("p", pre))[1]);

            string one = Path.Combine(dir, "one.img");
            FileBuilder.WriteNew(one, FileBuilder.RandomBytes(3 * MiB, 4));
            List<string> lines = Lines("Show-ExtentMap -LiteralPath $p -Width 10", ("p", one));
            Assert.Equal(1 + 8 + 1, lines.Count); // header, 8 rows of 10 cells, legend
            Assert.All(lines.Skip(1).Take(8), l => Assert.Equal(new string('█', 10), l));

            string many = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "map-many"), "many.img");
            FileBuilder.Chunks(many, 20_000, 4096, 8192, fsyncEach: false);
            List<string> big = Lines("Show-ExtentMap -LiteralPath $p -Width 40 -Rows 2", ("p", many));
            Assert.Equal(4, big.Count);
            Assert.Contains("20,000 extent(s)", big[0], StringComparison.Ordinal);
            Assert.All(big.Skip(1).Take(2), l => Assert.Equal(40, l.Length));
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
            Assert.Equal(3, r.Output.Count);
            Assert.StartsWith(good + ":", r.Output[0].ToString(), StringComparison.Ordinal);
        }
    }
}
