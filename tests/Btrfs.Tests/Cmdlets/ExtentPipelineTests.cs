namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Get-BtrfsExtent in pipelines: binding, wildcards, filtering, scalar properties, the table view, progress.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ExtentPipelineTests(LoopFileSystems fs)
    {
        private string TwoFiles(out string a, out string b)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "pipe");
            a = Path.Combine(dir, "a.img");
            b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 3, 64 * 1024, 128 * 1024);
            FileBuilder.Chunks(b, 5, 4096, 8192);
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image");
            return dir;
        }

        [SkippableFact]
        public void PSPathPropertyBindsToLiteralPath()
        {
            TwoFiles(out string a, out string b);
            PwshResult r = Pwsh.Run("[pscustomobject]@{ PSPath = $a }, [pscustomobject]@{ PSPath = $b } | Get-BtrfsExtent", ("a", a), ("b", b));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { (a, 3), (b, 5) }, r.Objects<FileExtent>().GroupBy(x => x.Path).Select(g => (g.Key, g.Count())));

            // What Get-ChildItem really emits: provider-qualified PSPath values. Output Path is the plain file system path.
            PwshResult q = Pwsh.Run("[pscustomobject]@{ PSPath = 'Microsoft.PowerShell.Core\\FileSystem::' + $a } | Get-BtrfsExtent", ("a", a));
            Assert.Empty(q.Errors);
            Assert.Equal(3, q.Output.Count);
            Assert.All(q.Objects<FileExtent>(), x => Assert.Equal(a, x.Path));
        }

        [SkippableFact]
        public void PipedStringsNameFilesLiterallyAndPatternsExpandOnTheCommandLine()
        {
            // A piped string names a file, as a piped object does: never expanded as a pattern (a name like
            // "x[1].img" must not reach "x1.img"). Patterns are for the command line.
            string dir = TwoFiles(out string a, out string b);
            PwshResult piped = Pwsh.Run("$pattern | Get-BtrfsExtent", ("pattern", Path.Combine(dir, "*.img")));
            Assert.Empty(piped.Output);
            ErrorRecord e = Assert.Single(piped.Errors);
            Assert.Equal(Path.Combine(dir, "*.img"), e.TargetObject);
            Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);

            PwshResult literal = Pwsh.Run("$a | Get-BtrfsExtent", ("a", a));
            Assert.Empty(literal.Errors);
            Assert.All(literal.Objects<FileExtent>(), x => Assert.Equal(a, x.Path));

            PwshResult typed = Pwsh.Run("Get-BtrfsExtent -Path $pattern", ("pattern", Path.Combine(dir, "*.img")));
            Assert.Empty(typed.Errors);
            Assert.Equal(new[] { a, b }, typed.Objects<FileExtent>().Select(x => x.Path).Distinct().OrderBy(x => x, StringComparer.Ordinal));
            Assert.Equal(8, typed.Output.Count);
        }

        [SkippableFact]
        public void OutputPathBindsOnward()
        {
            TwoFiles(out string a, out _);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a | Where-Object Index -eq 0 | Get-BtrfsExtent", ("a", a));
            Assert.Empty(r.Errors);
            Assert.Equal(3, r.Output.Count);
        }

        [SkippableFact]
        public void LiteralPathTakesBracketsAsThey()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "brackets");
            string odd = Path.Combine(dir, "vm[1].img");
            FileBuilder.Chunks(odd, 2, 4096, 8192);

            PwshResult literal = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p", ("p", odd));
            Assert.Empty(literal.Errors);
            Assert.Equal(2, literal.Output.Count);
            Assert.All(literal.Objects<FileExtent>(), x => Assert.Equal(odd, x.Path));

            // As -Path, "[1]" is a character class: it matches "vm1.img", not the file; the error says to use -LiteralPath.
            PwshResult wildcard = Pwsh.Run("Get-BtrfsExtent -Path $p", ("p", odd));
            ErrorRecord e = Assert.Single(wildcard.Errors);
            Assert.Contains("-LiteralPath", e.Exception.Message);
        }

        [SkippableFact]
        public void WhereObjectSeesNumbersAndBooleans()
        {
            TwoFiles(out string a, out string b);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a, $b | Where-Object Length -gt 32KB | Where-Object { -not $_.IsShared -and $_.PhysicalOffset -gt 0 }", ("a", a), ("b", b));
            Assert.Empty(r.Errors);
            Assert.Equal(3, r.Output.Count);
            Assert.All(r.Objects<FileExtent>(), x => Assert.Equal(a, x.Path));
        }

        [SkippableFact]
        public void EveryPropertyIsAScalar()
        {
            TwoFiles(out string a, out _);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a -IncludeHole", ("a", a));
            PSObject first = r.Output[0];
            string[] expected = { "Path", "Index", "LogicalOffset", "PhysicalOffset", "Length", "EndOffset", "Flags", "IsShared", "IsCompressed", "IsInline", "IsUnwritten", "IsDelalloc", "IsLast", "IsHole", "FileSystem", "Logical", "Physical" };
            Assert.Equal(expected.OrderBy(x => x), first.Properties.Select(p => p.Name).OrderBy(x => x));
            foreach (PSObject o in r.Output)
            {
                foreach (PSPropertyInfo p in o.Properties)
                {
                    object? v = p.Value;
                    Assert.NotNull(v);
                    Type t = v!.GetType();
                    Assert.True(t.IsPrimitive || t.IsEnum || t == typeof(string), $"{p.Name} is a {t}");
                }
            }

            Assert.IsType<long>(first.Properties["Length"].Value);
            Assert.IsType<ExtentFlags>(first.Properties["Flags"].Value);
        }

        [SkippableFact]
        public void TheTableViewShowsExactOffsetsAndReadableLengths()
        {
            TwoFiles(out string a, out _);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a -IncludeHole | Out-Host", new System.Collections.Generic.Dictionary<string, object?> { ["a"] = a }, captureHost: true);
            Assert.Empty(r.Errors);
            string text = r.HostText;
            Assert.Contains("Path: " + a, text);
            foreach (string header in new[] { "Index", "Logical", "Physical", "Length", "Flags" })
            {
                Assert.Contains(header, text);
            }

            Assert.Contains("64.0 KiB", text); // Length of each chunk
            Assert.Contains("131,072", text); // LogicalOffset of the second chunk, exact to the byte
            Assert.DoesNotContain("128 KiB", text); // offsets are addresses, never rounded
            Assert.Contains("Hole", text);
            Assert.Contains("Last", text);
            Assert.DoesNotContain("65536", text); // a length stays readable; the raw number is in the property
        }

        [SkippableFact]
        public void ManyExtentsReportProgressWithPercentAndCompletion()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "progress"), "many.img");
            FileBuilder.Chunks(path, 1200, 4096, 8192, fsyncEach: false);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $p -Sync", ("p", path));

            Assert.Equal(1200, r.Output.Count);
            Assert.True(r.Progress.Count >= 3, $"expected progress records, got {r.Progress.Count}");
            Assert.All(r.Progress, p => Assert.InRange(p.PercentComplete, 0, 100));
            Assert.All(r.Progress, p => Assert.Equal(r.Progress[0].ActivityId, p.ActivityId));
            Assert.NotEqual(0, r.Progress[0].ActivityId);
            Assert.Equal(ProgressRecordType.Completed, r.Progress[^1].RecordType);
            Assert.True(r.Progress[1].PercentComplete > r.Progress[0].PercentComplete);

            // A file with few extents finishes too fast to need a bar.
            TwoFiles(out string a, out _);
            Assert.Empty(Pwsh.Run("Get-BtrfsExtent -LiteralPath $a", ("a", a)).Progress);
        }

        [SkippableFact]
        public void VerboseSaysWhichFileAndFilesystem()
        {
            TwoFiles(out string a, out _);
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $a -Verbose", ("a", a));
            VerboseRecord v = Assert.Single(r.Verbose);
            Assert.Contains(a, v.Message);
            Assert.Contains("btrfs", v.Message);
        }

        [SkippableFact]
        public void OffsetsInTheTableAreExactAndSourcesAndDirectoriesKeepTheirIdentity()
        {
            // Before: a 3 TiB sparse file's data extent and the hole after it both showed "1.91 TiB";
            // New-BtrfsReflink's Source was cut to "/srv/images/vms/a.i…"; two vm3.img rows of
            // Measure-BtrfsUsage -Recurse looked alike.
            string dir = fs.NewDirectory(TestFs.Btrfs, "identity");
            string sparse = Path.Combine(dir, "sparse.img");
            FileBuilder.Sparse(sparse, 3L << 40);
            FileBuilder.WriteAt(sparse, (2L << 40) + 4096, FileBuilder.RandomBytes(4096, 3));
            string deep = Directory.CreateDirectory(Path.Combine(dir, "a-rather-long-directory-name", "and-another-level")).FullName;
            string src = Path.Combine(deep, "vm3.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(64 * 1024, 4));
            Directory.CreateDirectory(Path.Combine(dir, "two"));
            FileBuilder.WriteNew(Path.Combine(dir, "two", "vm3.img"), FileBuilder.RandomBytes(64 * 1024, 5));
            PwshResult r = Pwsh.Run(
                "Get-BtrfsExtent -LiteralPath $s -IncludeHole | Out-String -Width 80; New-BtrfsReflink -LiteralPath $f -Destination $d | Out-String -Width 80; Measure-BtrfsUsage -LiteralPath $t -Recurse | Out-String -Width 80",
                ("s", sparse),
                ("f", src),
                ("d", Path.Combine(dir, "copy.img")),
                ("t", dir));
            Assert.Empty(r.Errors);
            string extents = r.Output[0].ToString()!, reflink = r.Output[1].ToString()!, usage = r.Output[2].ToString()!;
            Assert.Contains(((2L << 40) + 4096).ToString("N0", System.Globalization.CultureInfo.CurrentCulture), extents, StringComparison.Ordinal);
            Assert.Contains(((2L << 40) + 8192).ToString("N0", System.Globalization.CultureInfo.CurrentCulture), extents, StringComparison.Ordinal);
            Assert.Contains("and-another-level/vm3.img", reflink.Replace("\n", string.Empty).Replace(" ", string.Empty), StringComparison.Ordinal);
            Assert.Contains("Directory: " + Path.Combine(dir, "two"), usage.Replace("\n", string.Empty), StringComparison.Ordinal); // a long directory wraps at 80
            Assert.All((extents + reflink + usage).Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, l));
        }

        [SkippableFact]
        public void TheExactTableShowsOffsetsAndAddressesToTheByteWithin80Columns()
        {
            // Found by a newcomer review: Logical was rounded ("1.00 MiB" for 1,052,672, the same as the length
            // before it), so the layout could not be read from the table.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "exact-view"), "vm.img");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(2 << 20, 41));
            Shell.Run("sync");
            FileBuilder.WriteAt(file, 257 * 4096, FileBuilder.RandomBytes(4096, 42));
            Shell.Run("sync");
            PwshResult r = Pwsh.Run("$x = @(Get-BtrfsExtent -LiteralPath $f -Exact); $x | Out-String -Width 80; $x", ("f", file));
            Assert.Empty(r.Errors);
            string table = r.Output[0].ToString()!;
            List<BtrfsExtentItem> items = r.Output.Skip(1).Select(o => (BtrfsExtentItem)o.BaseObject).ToList();
            Assert.Equal(3, items.Count);
            foreach (BtrfsExtentItem i in items)
            {
                Assert.Contains(i.LogicalOffset.ToString("N0", CultureInfo.CurrentCulture), table, StringComparison.Ordinal);
                Assert.Contains(i.DiskAddress.ToString("N0", CultureInfo.CurrentCulture), table, StringComparison.Ordinal);
            }

            Assert.Contains("1,052,672", table, StringComparison.Ordinal);
            Assert.All(table.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, l));

            // A sparse image's offsets past 1 TB: without separators, on one line, where with them they would not fit
            // (before: "1,099,562,192,8" and "96" on the next line). Found by a hostile review.
            string sparse = Path.Combine(Path.GetDirectoryName(file)!, "sparse.img");
            FileBuilder.WriteNew(sparse, Array.Empty<byte>());
            FileBuilder.WriteAt(sparse, (1L << 40) + (12345L * 4096), FileBuilder.RandomBytes(8192, 43));
            Shell.Run("sync");
            PwshResult far = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f -Exact | Out-String -Width 80; Get-BtrfsExtent -LiteralPath $f | Out-String -Width 80", ("f", sparse));
            Assert.Empty(far.Errors);
            Assert.Equal(2, far.Output.Count);
            Assert.Matches(@"(?m)^\s*\d+\s+1099562192896\s", far.Output[0].ToString()!); // -Exact: 15 columns
            Assert.Matches(@"(?m)^\s*\d+\s+1,099,562,192,896\s", far.Output[1].ToString()!); // FIEMAP's table: 17 columns
            Assert.All(far.Output.SelectMany(o => o.ToString()!.Split('\n')), l => Assert.True(l.TrimEnd().Length <= 80, l));

            // The owners' table shows the same addresses the same way. Before: without thousands separators, so
            // the two tables could not be compared by eye. Found by a hostile review.
            PwshResult owners = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f -Exact | Get-BtrfsExtentOwner -Detailed | Out-String -Width 80", ("f", file));
            Assert.Empty(owners.Errors);
            string ownersTable = owners.Output[0].ToString()!;
            foreach (BtrfsExtentItem i in items)
            {
                Assert.Contains(i.DiskAddress.ToString("N0", CultureInfo.CurrentCulture), ownersTable, StringComparison.Ordinal);
            }

            Assert.All(ownersTable.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, l));
        }

        [SkippableFact]
        public void EveryTableViewShowsALongFileNameWholeWithin80Columns()
        {
            // Before: Measure-Fragmentation, Measure-BtrfsUsage and Measure-BtrfsUsage -ByCompression cut a
            // long name to "a very long fi…" at 80 columns. Found by a newcomer review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "long-names");
            const string Name = "a very long file name that goes on and on for the virtual machine image.qcow2";
            string file = Path.Combine(dir, Name);
            FileBuilder.Fragmented(file, 1 << 20, 40);
            BtrfsProgs.Sync(dir);
            string[] commands =
            {
                "Measure-Fragmentation -LiteralPath $f",
                "Measure-BtrfsUsage -LiteralPath $f",
                "Test-NoCow -LiteralPath $f -Detailed",
                "Test-BtrfsSwapfile -LiteralPath $f -Detailed",
                "$null = New-Item -ItemType Directory -Path ($f + '.d'); New-BtrfsReflink -LiteralPath $f -Destination (Join-Path ($f + '.d') (Split-Path -Leaf $f))",
                "Invoke-BtrfsDefrag -LiteralPath $f -Confirm:$false",
            };
            foreach (string command in commands)
            {
                PwshResult r = Pwsh.Run(command + " | Out-String -Width 80", ("f", file));
                Assert.True(r.Errors.Count == 0, command + ": " + string.Join("\n", r.Errors));
                string table = r.Output[0].ToString()!;
                Assert.DoesNotContain("\u2026", table, StringComparison.Ordinal);
                Assert.All(table.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 80, command + ": " + l));
                // The name column, read line by line under its header, holds the whole name: wrapped, never cut.
                string[] lines = table.Split('\n');
                int header = Array.FindIndex(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\bName\b"));
                Assert.True(header >= 0, command + ": no Name column in\n" + table);
                int start = System.Text.RegularExpressions.Regex.Match(lines[header], @"\bName\b").Index;
                var next = System.Text.RegularExpressions.Regex.Match(lines[header][(start + 4)..], @"\S");
                int end = next.Success ? start + 4 + next.Index : int.MaxValue;
                string column = string.Concat(lines.Skip(header + 2).TakeWhile(l => l.Trim().Length > 0)
                    .Select(l => l.Length <= start ? string.Empty : l[start..Math.Min(l.Length, end)]));
                Assert.True(
                    column.Replace(" ", string.Empty, StringComparison.Ordinal) == Name.Replace(" ", string.Empty, StringComparison.Ordinal),
                    command + ": the Name column holds '" + column + "' in\n" + table);
            }
        }
    }
}
