namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// -Recurse with -Include, -Exclude and -Depth, the same on every cmdlet that walks a tree (one walker,
    /// one filter): which files each cmdlet processed, read from its own output.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class RecurseFilterTests(LoopFileSystems fs)
    {
        /// <summary>(cmdlet, the command after the path, how to get processed paths from its output).</summary>
        public static IEnumerable<object[]> Cmdlets() => new[]
        {
            new object[] { "Test-NoCow", "-Detailed" },
            new object[] { "Get-BtrfsExtent", string.Empty },
            new object[] { "Measure-Fragmentation", string.Empty },
            new object[] { "Measure-BtrfsUsage", string.Empty },
            new object[] { "Invoke-BtrfsDefrag", "-Confirm:$false" },
            new object[] { "Set-NoCow", "-PassThru" },
            new object[] { "ConvertTo-NoCow", "-PassThru -Confirm:$false" },
            new object[] { "ConvertFrom-NoCow", "-PassThru -Confirm:$false" },
            new object[] { "New-BtrfsReflink", "-Destination $copy -Confirm:$false" },
        };

        /// <summary>a.img A.IMG b.qcow2 notes.txt sub/c.img sub/deep/d.img skip/e.img skip.img</summary>
        private static string Tree(string root)
        {
            foreach (string d in new[] { "sub", "sub/deep", "skip" })
            {
                Directory.CreateDirectory(Path.Combine(root, d));
            }

            int seed = 1;
            foreach (string f in new[] { "a.img", "A.IMG", "b.qcow2", "notes.txt", "sub/c.img", "sub/deep/d.img", "skip/e.img", "skip.img" })
            {
                FileBuilder.Chunks(Path.Combine(root, f), 2, 64 * 1024, 128 * 1024, seed: seed++);
            }

            return root;
        }

        /// <summary>The regular files (relative to <paramref name="root"/>) the command reached: named by its output, or for New-BtrfsReflink created in the copy.</summary>
        private static string[] Processed(string cmdlet, string args, string root, string copy, string filters)
        {
            PwshResult r = Pwsh.Run($"{cmdlet} -LiteralPath $root {filters} {args}", ("root", root), ("copy", copy));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            IEnumerable<string> paths = cmdlet == "New-BtrfsReflink"
                ? Directory.EnumerateFiles(copy, "*", SearchOption.AllDirectories).Select(f => Path.Combine(root, Path.GetRelativePath(copy, f)))
                : r.Output.Select(o => o.Properties["Path"]?.Value as string).OfType<string>();
            return paths.Where(File.Exists).Select(p => Path.GetRelativePath(root, p)).Distinct().Order(StringComparer.Ordinal).ToArray();
        }

        [SkippableTheory]
        [MemberData(nameof(Cmdlets))]
        public void IncludeExcludeAndDepthChooseTheSameFilesEverywhere(string cmdlet, string args)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "filters");
            string root = Tree(Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName);
            string Copy(int n) => Path.Combine(dir, "copy" + n);
            if (cmdlet == "ConvertFrom-NoCow")
            {
                Assert.Empty(Pwsh.Run("ConvertTo-NoCow -LiteralPath $r -Recurse -Confirm:$false", ("r", root)).Errors);
            }

            // Everything, as before.
            Assert.Equal(
                new[] { "A.IMG", "a.img", "b.qcow2", "notes.txt", "skip.img", "skip/e.img", "sub/c.img", "sub/deep/d.img" },
                Processed(cmdlet, args, root, Copy(1), "-Recurse"));

            // -Include picks files by name, case-insensitively, in every directory; -Exclude leaves out a
            // directory and everything below it, and files by name.
            Assert.Equal(
                new[] { "A.IMG", "a.img", "sub/c.img", "sub/deep/d.img" },
                Processed(cmdlet, args, root, Copy(2), "-Recurse -Include *.img -Exclude skip*"));

            // -Depth 0: the directory's own entries; -Depth 1: one level below; -Depth implies -Recurse.
            Assert.Equal(
                new[] { "A.IMG", "a.img", "b.qcow2", "notes.txt", "skip.img" },
                Processed(cmdlet, args, root, Copy(3), "-Depth 0"));
            Assert.Equal(
                new[] { "A.IMG", "a.img", "sub/c.img" },
                Processed(cmdlet, args, root, Copy(4), "-Depth 1 -Include *.img -Exclude skip*"));
        }

        [SkippableFact]
        public void IncludeNeverChangesADirectoryItDoesNotNameAndExcludeHoldsForNamedDirectories()
        {
            // Before: Set-NoCow t -Recurse -Include *.img marked every directory (new logs lost their
            // checksums), and -Exclude keepcow was ignored for keepcow named directly, by a wildcard or piped.
            string root = fs.NewDirectory(TestFs.Btrfs, "filters-dirs");
            foreach (string d in new[] { "vms", "vms/keep", "logs", "keepcow" })
            {
                Directory.CreateDirectory(Path.Combine(root, d));
            }

            FileBuilder.WriteNew(Path.Combine(root, "vms", "new.img"), Array.Empty<byte>());
            FileBuilder.WriteNew(Path.Combine(root, "vms", "keep", "other.txt"), FileBuilder.RandomBytes(4096, 1));
            FileBuilder.WriteNew(Path.Combine(root, "logs", "app.log"), FileBuilder.RandomBytes(4096, 2));
            string db = Path.Combine(root, "keepcow", "data.db");
            FileBuilder.WriteNew(db, FileBuilder.RandomBytes(64 * 1024, 3));

            Assert.Empty(Pwsh.Run("Set-NoCow -LiteralPath $r -Recurse -Include *.img", ("r", root)).Errors);
            Assert.True(FileFacts.HasNoCow(Path.Combine(root, "vms", "new.img")));
            Assert.All(new[] { ".", "vms", "vms/keep", "logs", "keepcow" }, d => Assert.False(FileFacts.HasNoCow(Path.Combine(root, d)), d));
            PwshResult tested = Pwsh.Run("Test-NoCow -LiteralPath $r -Recurse -Include *.img -Detailed", ("r", root));
            Assert.Equal(new[] { Path.Combine(root, "vms", "new.img") }, tested.Output.Select(o => (string)o.Properties["Path"].Value));

            FileFacts before = FileFacts.Of(db);
            foreach (string script in new[]
            {
                "ConvertTo-NoCow -Path (Join-Path ([WildcardPattern]::Escape($r)) '*') -Recurse -Exclude keepcow -Confirm:$false",
                "Get-ChildItem -LiteralPath $r -Directory | ConvertTo-NoCow -Recurse -Exclude keepcow -Confirm:$false",
                "ConvertTo-NoCow -LiteralPath (Join-Path $r 'keepcow') -Recurse -Exclude keep* -Confirm:$false",
            })
            {
                PwshResult r = Pwsh.Run(script, ("r", root));
                Assert.True(r.Errors.Count == 0, script + "\n" + string.Join("\n", r.Errors));
                Assert.False(FileFacts.HasNoCow(Path.Combine(root, "keepcow")), script);
                Assert.Equal(before, FileFacts.Of(db));
            }

            Assert.True(FileFacts.HasNoCow(Path.Combine(root, "logs", "app.log"))); // what was not excluded was converted
        }

        [SkippableFact]
        public void AFileNamedDirectlyIsTakenOrLeftByTheSamePatterns()
        {
            string root = Tree(fs.NewDirectory(TestFs.Btrfs, "filters-named"));
            PwshResult r = Pwsh.Run(
                "Measure-Fragmentation -LiteralPath $a, $n -Exclude *.txt -Verbose; Get-ChildItem -LiteralPath $root -File | Test-NoCow -Detailed -Include *.qcow2",
                ("a", Path.Combine(root, "a.img")),
                ("n", Path.Combine(root, "notes.txt")),
                ("root", root));
            Assert.Empty(r.Errors);
            Assert.Equal(
                new[] { Path.Combine(root, "a.img"), Path.Combine(root, "b.qcow2") },
                r.Output.Select(o => (string)o.Properties["Path"].Value));
            Assert.Contains(r.Verbose, v => v.Message.Contains("Leaving out '" + Path.Combine(root, "notes.txt") + "'", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void ADirectoryNamedWithIncludeButWithoutRecurseIsAnErrorNotNothing()
        {
            // Before: `Test-NoCow dir -Include *.img` gave nothing at all, no $false and no error, so `if (Test-NoCow ...)`
            // quietly took the false branch; Measure-Fragmentation and Get-BtrfsExtent the same. Found by a hostile test.
            string root = Tree(fs.NewDirectory(TestFs.Btrfs, "filters-dir-include"));
            foreach (string cmdlet in new[] { "Test-NoCow", "Measure-Fragmentation", "Get-BtrfsExtent", "Set-NoCow -WhatIf" })
            {
                PwshResult r = Pwsh.Run($"{cmdlet} -LiteralPath $r -Include *.img", ("r", root));
                ErrorRecord e = Assert.Single(r.Errors);
                Assert.Equal("PathIsDirectory", e.FullyQualifiedErrorId.Split(',')[0]);
                Assert.Equal(root, e.TargetObject);
                Assert.Contains("Add -Recurse", e.Exception.Message, StringComparison.Ordinal);
                Assert.Empty(r.Output);
            }

            // Its name taken by -Include, or left out by -Exclude: as before (the directory itself; left out, verbose).
            Assert.Equal(new object[] { false }, Pwsh.Run("Test-NoCow -LiteralPath $r -Include filters*", ("r", root)).Output.Select(o => o.BaseObject));
            PwshResult excluded = Pwsh.Run("Test-NoCow -LiteralPath $r -Exclude filters*", ("r", root));
            Assert.Empty(excluded.Errors);
            Assert.Empty(excluded.Output);
            Assert.Equal(3, Pwsh.Run("@(Test-NoCow -LiteralPath $r -Include *.img -Depth 0)", ("r", root)).Output.Count);

            // Matched by a pattern or piped in (the filtering idiom of Get-Item dir/* -Include): its directories are left out, as before.
            foreach (string idiom in new[] { "Test-NoCow -Path (Join-Path ([WildcardPattern]::Escape($r)) '*') -Include *.img", "Get-ChildItem -LiteralPath $r | Test-NoCow -Include *.img" })
            {
                PwshResult r = Pwsh.Run(idiom, ("r", root));
                Assert.True(r.Errors.Count == 0, idiom + ": " + string.Join(" / ", r.Errors));
                Assert.Equal(3, r.Output.Count); // a.img, A.IMG, skip.img
            }
        }

        [SkippableFact]
        public void TestNoCowRecurseChecksAWholeTreeInOnePesterLine()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "filters-pester");
            string images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
            Assert.Empty(Pwsh.Run("Set-NoCow -LiteralPath $i", ("i", images)).Errors);
            Directory.CreateDirectory(Path.Combine(images, "vms"));
            FileBuilder.WriteNew(Path.Combine(images, "vms", "a.img"), FileBuilder.RandomBytes(64 * 1024, 1));
            PwshResult good = Pwsh.Run("@(Test-NoCow -LiteralPath $i -Recurse)", ("i", images));
            Assert.Empty(good.Errors);
            Assert.Equal(new object[] { true, true, true }, good.Output.Select(o => o.BaseObject)); // images, vms, a.img

            // A copy-on-write file moved in keeps its state: the tree check says so.
            string cow = Path.Combine(dir, "cow.img");
            FileBuilder.WriteNew(cow, FileBuilder.RandomBytes(64 * 1024, 2));
            File.Move(cow, Path.Combine(images, "vms", "cow.img"));
            PwshResult bad = Pwsh.Run("@(Test-NoCow -LiteralPath $i -Recurse -Detailed) | Where-Object { -not $_.IsNoCow } | ForEach-Object Path", ("i", images));
            Assert.Equal(new object[] { Path.Combine(images, "vms", "cow.img") }, bad.Output.Select(o => o.BaseObject));
        }

        [SkippableFact]
        public void ANameThatIsNotUtf8IsSaidOnlyWhereIncludeAndExcludeWouldHaveTakenIt()
        {
            // Before: NameNotUtf8 for 'bad\xff.txt' under -Exclude *.txt, and for it under -Include d1, names the run
            // would have left out anyway (a hostile review). Matched as decoded with U+FFFD for each byte that is not UTF-8.
            string tree = fs.NewDirectory(TestFs.Btrfs, "notutf8-filter");
            FileBuilder.Chunks(Path.Combine(tree, "good.img"), 1, 4096, 4096, seed: 1);
            Shell.Run("bash", "-c", "cd \"$1\" && printf x > $'bad\\xff.txt'", "_", tree);
            Assert.Equal(2, Directory.GetFiles(tree).Length);

            foreach ((string args, bool said) in new[] { ("-Exclude *.txt", false), ("-Include *.img", false), ("-Include *.txt", true), (string.Empty, true), ("-Exclude *.img", true) })
            {
                PwshResult r = Pwsh.Run($"Get-BtrfsExtent -LiteralPath $t -Recurse {args}", ("t", tree));
                Assert.Equal(said ? new[] { "NameNotUtf8" } : Array.Empty<string>(), r.ErrorIds.ToArray());
            }
        }

        [SkippableFact]
        public void ABindMountOfADirectoryAboveIsOneDirectoryLoopErrorAndTheRestIsWalked()
        {
            // A bind mount of the tree inside itself: with -CrossFileSystem the walk enters mounts, and would go round
            // forever there. One error of its own id (before: InvalidArgument, a hostile review), the rest of the tree.
            string tree = fs.NewDirectory(TestFs.Btrfs, "bindloop");
            FileBuilder.Chunks(Path.Combine(tree, "a.img"), 2, 4096, 8192, seed: 1);
            string loop = Directory.CreateDirectory(Path.Combine(tree, "c")).FullName;
            FileBuilder.Chunks(Path.Combine(tree, "z.img"), 2, 4096, 8192, seed: 2);
            Shell.Run("mount", "--bind", tree, loop);
            try
            {
                PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $t -Recurse -CrossFileSystem", ("t", tree));
                ErrorRecord e = Assert.Single(r.Errors);
                Assert.Equal("DirectoryLoop,Btrfs.Commands.MeasureFragmentationCommand", e.FullyQualifiedErrorId);
                Assert.Equal(ErrorCategory.InvalidData, e.CategoryInfo.Category);
                Assert.Equal(loop, e.TargetObject);
                Assert.Contains("a bind mount makes a loop", e.Exception.Message, StringComparison.Ordinal);
                Assert.Equal(new[] { Path.Combine(tree, "a.img"), Path.Combine(tree, "z.img") }, r.Objects<FragmentationReport>().Select(x => x.Path).Order(StringComparer.Ordinal));
            }
            finally
            {
                Shell.Run("umount", loop);
            }
        }

        [SkippableFact]
        public void AnIncludeOrExcludeThatIsNotAValidWildcardIsRefusedBeforeAnyFile()
        {
            // A review: PowerShell compiles a pattern when it first matches a name, so -Include '[x' threw in the middle of the
            // walk, ending the command after some files were processed. Now it is the parameter's error, before anything.
            string dir = fs.NewDirectory(TestFs.Btrfs, "badinclude");
            FileBuilder.WriteNew(Path.Combine(dir, "a.img"), FileBuilder.RandomBytes(4096, 1));
            foreach (string parameter in new[] { "-Include", "-Exclude" })
            {
                PwshResult r = Pwsh.Run($"Test-NoCow -LiteralPath $d -Recurse {parameter} '[x', '*.img'", ("d", dir));
                Assert.Empty(r.Output);
                ErrorRecord e = Assert.Single(r.Errors);
                Assert.StartsWith("ParameterArgumentValidationError,", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Contains("'[x' is not a valid wildcard pattern", e.Exception.Message, StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void GetBtrfsExtentOnADirectorySaysToAddRecurse()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "filters-dir");
            PwshResult r = Pwsh.Run("Get-BtrfsExtent -LiteralPath $d", ("d", dir));
            Assert.Equal(new[] { "PathIsDirectory" }, r.ErrorIds);
            Assert.Contains("Add -Recurse to map every file below it", r.Errors[0].Exception.Message, StringComparison.Ordinal);

            // A link to a directory is said to be one: -Recurse would not follow it either (before: "Add -Recurse", which
            // then refused it as a symbolic link; a hostile test). New-BtrfsReflink too: its -Recurse walk does not follow
            // the link either (a review).
            string link = dir + "-link";
            File.CreateSymbolicLink(link, dir);
            foreach (string script in new[] { "Get-BtrfsExtent -LiteralPath $d", "Invoke-BtrfsDefrag -LiteralPath $d -Confirm:$false", "ConvertTo-NoCow -LiteralPath $d -Confirm:$false", "New-BtrfsReflink -LiteralPath $d -Destination ($d + '-copy')" })
            {
                PwshResult viaLink = Pwsh.Run(script, ("d", link));
                Assert.Equal(new[] { "PathIsSymbolicLink" }, viaLink.ErrorIds);
                Assert.Contains("it is a symbolic link to a directory, and symbolic links are never followed (with -Recurse neither)", viaLink.Errors[0].Exception.Message, StringComparison.Ordinal);
            }
        }
    
        [SkippableTheory]
        [InlineData("Test-NoCow", "-Detailed")]
        [InlineData("Measure-Fragmentation", "")]
        [InlineData("Measure-BtrfsUsage", "")]
        public void OverlappingStartingPointsProcessEachFileOnce(string cmdlet, string args)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "overlap");
            string root = Tree(Directory.CreateDirectory(Path.Combine(dir, "t[1]")).FullName);
            string sub = Path.Combine(root, "sub");
            string deep = Path.Combine(sub, "deep", "d.img");
            string[] all = { ".", "A.IMG", "a.img", "b.qcow2", "notes.txt", "skip", "skip.img", "skip/e.img", "sub", "sub/c.img", "sub/deep", "sub/deep/d.img" };

            string[] Paths(string command, params (string, object?)[] vars)
            {
                PwshResult r = Pwsh.Run(command, vars);
                Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
                return r.Output.Select(o => Path.GetRelativePath(root, (string)o.Properties["Path"].Value)).Order(StringComparer.Ordinal).ToArray();
            }

            string[] Expected(string[] paths) => cmdlet != "Test-NoCow" ? paths.Where(p => File.Exists(Path.Combine(root, p))).ToArray() : paths;

            // A tree, then a directory inside it; a directory, then the tree around it; a file, then its tree.
            Assert.Equal(Expected(all), Paths($"{cmdlet} -LiteralPath $root, $sub -Recurse {args}", ("root", root), ("sub", sub)));
            Assert.Equal(Expected(all), Paths($"{cmdlet} -LiteralPath $sub, $root -Recurse {args}", ("root", root), ("sub", sub)));
            Assert.Equal(Expected(all), Paths($"{cmdlet} -LiteralPath $deep, $root -Recurse {args}", ("root", root), ("deep", deep)));

            // Get-ChildItem -Recurse piped into a -Recurse cmdlet: everything Get-ChildItem names lies in a walked tree.
            Assert.Equal(
                Expected(all.Where(p => p != ".").ToArray()),
                Paths($"Get-ChildItem -LiteralPath $root -Recurse | {cmdlet} -Recurse {args}", ("root", root)));

            // A file the walk did not reach (below -Depth 0) is still processed when it is named.
            string[] shallow = { ".", "A.IMG", "a.img", "b.qcow2", "notes.txt", "skip", "skip.img", "sub", "sub/deep/d.img" };
            Assert.Equal(Expected(shallow), Paths($"{cmdlet} -LiteralPath $root, $deep -Depth 0 {args}", ("root", root), ("deep", deep)));

            // With -Depth, a directory named after the walk that reached it is walked on from where that walk stopped
            // (before: left out, so its deeper entries were never processed), and one named before is not processed
            // again where the later walk stops at it (before: processed twice).
            string[] depth0 = { ".", "A.IMG", "a.img", "b.qcow2", "notes.txt", "skip", "skip.img", "sub", "sub/c.img", "sub/deep" };
            Assert.Equal(Expected(depth0), Paths($"{cmdlet} -LiteralPath $root, $sub -Depth 0 {args}", ("root", root), ("sub", sub)));
            Assert.Equal(Expected(depth0), Paths($"{cmdlet} -LiteralPath $sub, $root -Depth 0 {args}", ("root", root), ("sub", sub)));
            Assert.Equal(Expected(all), Paths($"{cmdlet} -LiteralPath $root, $sub -Depth 1 {args}", ("root", root), ("sub", sub)));
        }

        /// <summary>
        /// What a walk passed over and did not process (a file bind-mounted from another subvolume, a symbolic link
        /// to a file outside the tree, a file reached through a symbolic link to a directory outside it) is still
        /// processed when it is named after the walk: it was not reached by it.
        /// </summary>
        [SkippableTheory]
        [InlineData("Test-NoCow", "-Detailed")]
        [InlineData("Measure-Fragmentation", "")]
        [InlineData("Measure-BtrfsUsage", "")]
        public void WhatAWalkPassedOverIsProcessedWhenNamedAfterIt(string cmdlet, string args)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "passed-over");
            string root = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
            string outside = Directory.CreateDirectory(Path.Combine(dir, "outside")).FullName;
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(dir, "other"));
            FileBuilder.WriteNew(Path.Combine(root, "a.img"), FileBuilder.RandomBytes(64 * 1024, 1));
            FileBuilder.WriteNew(Path.Combine(dir, "other", "o.img"), FileBuilder.RandomBytes(64 * 1024, 2));
            FileBuilder.WriteNew(Path.Combine(outside, "x.img"), FileBuilder.RandomBytes(64 * 1024, 3));
            string bound = Path.Combine(root, "bound.img");
            FileBuilder.WriteNew(bound, Array.Empty<byte>());
            string link = Path.Combine(root, "link.img");
            File.CreateSymbolicLink(link, Path.Combine(outside, "x.img"));
            Directory.CreateSymbolicLink(Path.Combine(root, "linkdir"), outside);
            string throughLink = Path.Combine(root, "linkdir", "x.img");
            Shell.Run("mount", "--bind", Path.Combine(dir, "other", "o.img"), bound);
            PwshResult r;
            try
            {
                r = Pwsh.Run($"{cmdlet} -LiteralPath $root, $bound, $link, $through -Recurse {args} -Verbose 4>&1", ("root", root), ("bound", bound), ("link", link), ("through", throughLink));
            }
            finally
            {
                Shell.Run("umount", bound);
            }

            Assert.Equal(new[] { "PathIsSymbolicLink" }, r.ErrorIds); // as when it is named alone with -Recurse: pass its target
            Assert.Equal(link, r.Errors[0].TargetObject);
            string[] paths = r.Output.Where(o => o.BaseObject is not System.Management.Automation.VerboseRecord)
                .Select(o => Path.GetRelativePath(root, (string)o.Properties["Path"].Value)).Order(StringComparer.Ordinal).ToArray();
            string verbose = string.Join("\n", r.Output.Select(o => o.BaseObject).OfType<System.Management.Automation.VerboseRecord>().Select(v => v.Message));
            string[] expected = cmdlet == "Test-NoCow" ? new[] { ".", "a.img", "bound.img", "linkdir/x.img" } : new[] { "a.img", "bound.img", "linkdir/x.img" };
            Assert.True(expected.SequenceEqual(paths), $"processed: {string.Join(", ", paths)}\n{verbose}");
        }

        /// <summary>
        /// A file the walk processed, named again after it through a symbolic link to its directory inside the tree,
        /// or through a bind mount of the walked directory, is not processed a second time (the real path, and the
        /// walked root under another mount, are recognised).
        /// </summary>
        [SkippableTheory]
        [InlineData("Test-NoCow", "-Detailed")]
        [InlineData("Measure-Fragmentation", "")]
        [InlineData("Measure-BtrfsUsage", "")]
        public void WhatAWalkReachedIsNotProcessedAgainUnderAnotherName(string cmdlet, string args)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "other-name");
            string root = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
            Directory.CreateDirectory(Path.Combine(root, "in"));
            FileBuilder.WriteNew(Path.Combine(root, "in", "f.img"), FileBuilder.RandomBytes(64 * 1024, 1));
            Directory.CreateSymbolicLink(Path.Combine(root, "alias"), Path.Combine(root, "in"));
            string bind = Directory.CreateDirectory(Path.Combine(dir, "bind")).FullName;
            Shell.Run("mount", "--bind", root, bind);
            PwshResult r;
            try
            {
                r = Pwsh.Run($"{cmdlet} -LiteralPath $root, $viaLink, $viaBind -Recurse {args}", ("root", root), ("viaLink", Path.Combine(root, "alias", "f.img")), ("viaBind", Path.Combine(bind, "in", "f.img")));
            }
            finally
            {
                Shell.Run("umount", bind);
            }

            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            string[] paths = r.Output.Select(o => Path.GetRelativePath(root, (string)o.Properties["Path"].Value)).Order(StringComparer.Ordinal).ToArray();
            string[] expected = cmdlet == "Test-NoCow" ? new[] { ".", "in", "in/f.img" } : new[] { "in/f.img" };
            Assert.True(expected.SequenceEqual(paths), $"processed: {string.Join(", ", paths)}");
        }

        /// <summary>
        /// Before: a file below a directory the walk could not read (another user's, mode 0711) was left out as
        /// "already reached by the walk" when it was named after it, and so never looked at. Now it is treated as
        /// when it is named alone (with -Recurse its directory must be opened, which 0711 refuses: an error that
        /// says so, instead of silence).
        /// </summary>
        [SkippableFact]
        public void AFileBelowADirectoryTheWalkCouldNotReadIsTreatedAsWhenNamedAlone()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "unreadable-below");
            string root = Directory.CreateDirectory(Path.Combine(dir, "top")).FullName;
            string secret = Directory.CreateDirectory(Path.Combine(root, "secret")).FullName;
            string file = Path.Combine(secret, "s.img");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(64 * 1024, 2));
            Shell.Run("chmod", "0755", dir, root);
            Shell.Run("chmod", "0711", secret);
            Shell.Run("chmod", "0644", file);
            PwshResult alone, after;
            using (Unprivileged.Begin())
            {
                alone = Pwsh.Run("Measure-Fragmentation -LiteralPath $file -Recurse", ("file", file));
                after = Pwsh.Run("Measure-Fragmentation -LiteralPath $root, $file -Recurse -Verbose", ("root", root), ("file", file));
            }

            string Said(PwshResult r) => string.Join(" / ", r.Errors.Select(e => e.FullyQualifiedErrorId + ": " + e)) + " | " + string.Join(" / ", r.Verbose.Select(v => v.Message));
            Assert.True(after.Errors.Count == 1 + alone.Errors.Count, Said(after));
            Assert.Equal(secret, after.Errors[0].TargetObject); // the walk could not read it
            Assert.Equal(alone.ErrorIds, after.ErrorIds.Skip(1));
            Assert.Equal(alone.Output.Count, after.Output.Count);
            Assert.DoesNotContain(after.Verbose, v => v.Message.Contains("already reached", StringComparison.Ordinal));

            // The walk's own start unreadable: a directory below it, named after it, is treated as when named alone.
            string sub = Directory.CreateDirectory(Path.Combine(secret, "sub")).FullName;
            string inSub = Path.Combine(sub, "x.img");
            FileBuilder.WriteNew(inSub, FileBuilder.RandomBytes(64 * 1024, 3));
            Shell.Run("chmod", "0755", sub);
            Shell.Run("chmod", "0644", inSub);
            PwshResult subAlone, below;
            using (Unprivileged.Begin())
            {
                subAlone = Pwsh.Run("Measure-Fragmentation -LiteralPath $sub -Recurse", ("sub", sub));
                below = Pwsh.Run("Measure-Fragmentation -LiteralPath $secret, $sub -Recurse -Verbose", ("secret", secret), ("sub", sub));
            }

            Assert.True(below.Errors.Count == 1 + subAlone.Errors.Count && (string)below.Errors[0].TargetObject == secret, Said(below));
            Assert.Equal(subAlone.ErrorIds, below.ErrorIds.Skip(1));
            Assert.Equal(subAlone.Output.Count, below.Output.Count);
            Assert.DoesNotContain(below.Verbose, v => v.Message.Contains("already reached", StringComparison.Ordinal));
        }

        /// <summary>
        /// A directory of this user's named with -Recurse, inside a directory this user may search but not read
        /// (another user's, mode 0711, as /var/lib/libvirt/images is): walked, read and changed like any other
        /// (before: refused, since its parent could not be opened for reading; now the parent is only named).
        /// </summary>
        [SkippableFact]
        public void ADirectoryInsideOneThisUserMayOnlySearchIsWalkedReadAndChanged()
        {
            string top = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only"), "top")).FullName;
            string mine = Directory.CreateDirectory(Path.Combine(top, "mine")).FullName;
            string sub = Directory.CreateDirectory(Path.Combine(mine, "sub")).FullName;
            byte[] data = FileBuilder.RandomBytes(256 * 1024, 5);
            string a = Path.Combine(mine, "a.img"), b = Path.Combine(sub, "b.img");
            FileBuilder.WriteNew(a, data);
            FileBuilder.WriteNew(b, data);
            Shell.Run("sync");
            Shell.Run("chown", "-R", "65534:65534", mine);
            Shell.Run("chmod", "0711", top);
            Shell.Run("chmod", "0755", Path.GetDirectoryName(top)!);
            string copies = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only-copies"), "to")).FullName;
            Shell.Run("chown", "65534:65534", copies);
            string copy = Path.Combine(copies, "mine");
            PwshResult fragments, nocow, duplicates, extents, converted, after, reflinked;
            using (Unprivileged.AsNobody())
            {
                Assert.False(Directory.Exists(top) && CanList(top), "nobody can list the 0711 directory: the test proves nothing");
                fragments = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse", ("d", mine));
                nocow = Pwsh.Run("Test-NoCow -LiteralPath $d -Recurse -Detailed", ("d", mine));
                duplicates = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $d -Recurse", ("d", mine));
                extents = Pwsh.Run("Get-BtrfsExtent -LiteralPath $d -Recurse", ("d", mine));
                converted = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse -Confirm:$false", ("d", mine));
                after = Pwsh.Run("Test-NoCow -LiteralPath $d -Recurse -Detailed | Where-Object IsNoCow", ("d", mine));
                reflinked = Pwsh.Run("New-BtrfsReflink -LiteralPath $d -Destination $c -Recurse", ("d", mine), ("c", copy));
            }

            static bool CanList(string dir)
            {
                try
                {
                    _ = Directory.GetFileSystemEntries(dir);
                    return true;
                }
                catch (UnauthorizedAccessException)
                {
                    return false;
                }
            }

            string Said(PwshResult r) => string.Join(" / ", r.Errors.Select(e => e.FullyQualifiedErrorId + ": " + e));
            foreach (PwshResult r in new[] { fragments, nocow, duplicates, extents, converted, after, reflinked })
            {
                Assert.True(r.Errors.Count == 0, Said(r));
            }

            Assert.Equal(new[] { a, b }, fragments.Output.Select(o => (string)o.Properties["Path"].Value).Order(StringComparer.Ordinal));
            Assert.Equal(new[] { mine, a, sub, b }.Order(StringComparer.Ordinal), nocow.Output.Select(o => (string)o.Properties["Path"].Value).Order(StringComparer.Ordinal));
            Btrfs.Core.BtrfsDuplicateGroup g = Assert.Single(duplicates.Objects<Btrfs.Core.BtrfsDuplicateGroup>());
            Assert.Equal(new[] { a, b }, g.Ranges.Select(x => x.Path).Order(StringComparer.Ordinal));
            Assert.Equal(new[] { a, b }, extents.Output.Select(o => (string)o.Properties["Path"].Value).Distinct().Order(StringComparer.Ordinal));

            // The change, seen from outside: lsattr shows the C attribute on both files and both directories.
            foreach (string item in new[] { mine, sub, a, b })
            {
                string attributes = Shell.Run("lsattr", "-d", item).Split(' ')[0];
                Assert.True(attributes.Contains('C'), $"{item}: {attributes}");
            }

            Assert.Equal(4, after.Output.Count);
            Assert.Equal(data, File.ReadAllBytes(a));
            Assert.Equal(data, File.ReadAllBytes(b));
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(copy, "a.img")));
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(copy, "sub", "b.img")));

            // The parent's own attribute cannot be read by this user: not said to be COW, but unknown (root sees it).
            string tf = Path.Combine(top, "tf.img"), tg = Path.Combine(top, "tg.img");
            FileBuilder.WriteNew(tf, data);
            FileBuilder.WriteNew(tg, data);
            Shell.Run("chown", "65534:65534", tf, tg);
            Shell.Run("chattr", "+C", top); // after tf was made: tf stays COW, ConvertTo-NoCow has work to do
            Shell.Run("sync");
            FileFacts before = FileFacts.Of(tf);
            PwshResult parentState, rootsParent, fileRecursed, fileFound, rewrite, preview;
            using (Unprivileged.AsNobody())
            {
                preview = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", captureHost: true, variables: new Dictionary<string, object?> { ["f"] = tf });
                parentState = Pwsh.Run("Test-NoCow -LiteralPath $d -Detailed", ("d", mine));
                fileRecursed = Pwsh.Run("Measure-Fragmentation -LiteralPath $f -Recurse", ("f", tf));
                fileFound = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $f, $g", ("f", tf), ("g", tg));
                rewrite = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Confirm:$false", ("f", tf));
            }

            rootsParent = Pwsh.Run("Test-NoCow -LiteralPath $d -Detailed", ("d", mine));
            Assert.Null(parentState.Output.Single().Properties["DirectoryIsNoCow"].Value);
            Assert.Equal(true, rootsParent.Output.Single().Properties["DirectoryIsNoCow"].Value);

            // A file in that directory, named with -Recurse or searched: read like any other.
            Assert.True(fileRecursed.Errors.Count == 0, Said(fileRecursed));
            Assert.Equal(tf, (string)fileRecursed.Output.Single().Properties["Path"].Value);
            Assert.True(fileFound.Errors.Count == 0, Said(fileFound));
            Assert.Equal(new[] { tf, tg }, Assert.Single(fileFound.Objects<Btrfs.Core.BtrfsDuplicateGroup>()).Ranges.Select(x => x.Path).Order(StringComparer.Ordinal));

            // Rewriting it needs the directory open (its temporary file, its fsync): refused, the file as it was;
            // -WhatIf says so instead of what it would do.
            Assert.Equal(new[] { "AccessDenied" }, preview.ErrorIds);
            Assert.DoesNotContain("What if", preview.HostText, StringComparison.Ordinal);
            Assert.Equal(new[] { "AccessDenied" }, rewrite.ErrorIds);
            Assert.Contains("may search its directory", rewrite.Errors[0].ToString(), StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(tf));

            // Also where this user may write the directory but not read it (mode 0733): refused before anything, no
            // temporary file left (before: the parent could not be opened at all, so the same refusal by another road).
            Shell.Run("chmod", "0733", top);
            string sv = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only-subvolume"), "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            Shell.Run("chown", "65534:65534", sv);
            var creators = new Dictionary<string, string>
            {
                ["New-BtrfsReflink -LiteralPath $f -Destination $d/copy.img"] = top, // the refusal of every file going there
                ["New-BtrfsReflink -LiteralPath $m -Destination $d/tree -Recurse"] = Path.Combine(top, "tree"),
                ["New-BtrfsSwapfile \"$d/swap\" -Size 1MB"] = Path.Combine(top, "swap"),
                ["New-BtrfsSubvolume \"$d/sv\""] = Path.Combine(top, "sv"),
                ["New-BtrfsSnapshot $s -Destination \"$d/snap\""] = Path.Combine(top, "snap"),
            };
            var created = new Dictionary<string, PwshResult>();
            using (Unprivileged.AsNobody())
            {
                rewrite = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Confirm:$false", ("f", tf));
                foreach (string script in creators.Keys)
                {
                    created[script] = Pwsh.Run(script, ("f", tf), ("d", top), ("m", mine), ("s", sv));
                }
            }

            Assert.Equal(new[] { "AccessDenied" }, rewrite.ErrorIds);
            Assert.Equal(before, FileFacts.Of(tf));

            // Creating in it needs the directory open too: each creator says so (before: "Cannot open '<dir>':
            // Permission denied. Run as a user who can read the file", or "Cannot open the directory"), nothing made.
            foreach ((string script, string target) in creators)
            {
                PwshResult r = created[script];
                Assert.True(r.ErrorIds.SequenceEqual(new[] { "AccessDenied" }), script + ": " + Said(r));
                Assert.Equal(target, r.Errors[0].TargetObject);
                Assert.Contains($"this user may not read the directory '{top}', and creating needs it readable", r.Errors[0].ToString(), StringComparison.Ordinal);
                Assert.EndsWith("Nothing was created.", r.Errors[0].ToString(), StringComparison.Ordinal);
            }

            Assert.Equal(new[] { "mine", "tf.img", "tg.img" }, Directory.GetFileSystemEntries(top).Select(Path.GetFileName).Order(StringComparer.Ordinal));

            // The same inside an existing destination tree (a drop box: its sub 0733), for a hash file in this
            // user's own 0300 directory; a directory this user cannot even reach keeps the open's own error.
            string merge = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only-merge"), "mine")).FullName;
            string dropBox = Directory.CreateDirectory(Path.Combine(merge, "sub")).FullName;
            Shell.Run("chmod", "0777", merge);
            Shell.Run("chmod", "0733", dropBox);
            string ownDir = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only-own"), "db")).FullName;
            Shell.Run("chown", "65534:65534", ownDir);
            Shell.Run("chmod", "0300", ownDir);
            string closed = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "search-only-closed"), "closed", "in")).FullName;
            Shell.Run("chmod", "0700", Path.GetDirectoryName(closed)!);
            string closedFile = Path.Combine(closed, "x.img");
            FileBuilder.WriteNew(closedFile, data);
            Shell.Run("chown", "65534:65534", closedFile);
            FileFacts closedBefore = FileFacts.Of(closedFile);
            string o711 = fs.NewDirectory(TestFs.Btrfs, "search-only-711");
            Shell.Run("chmod", "0711", o711);
            PwshResult merged, hashed, unreachable, below, searchOnly;
            using (Unprivileged.AsNobody())
            {
                merged = Pwsh.Run("New-BtrfsReflink -LiteralPath $m -Destination $d -Recurse", ("m", mine), ("d", Path.GetDirectoryName(merge)));
                hashed = Pwsh.Run("Find-BtrfsDuplicate -LiteralPath $m -Recurse -HashFile $h", ("m", mine), ("h", Path.Combine(ownDir, "h.db")));
                unreachable = Pwsh.Run("New-BtrfsSwapfile $p -Size 1MB", ("p", Path.Combine(closed, "swap")));
                below = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Confirm:$false", ("f", Path.Combine(closed, "x.img")));
                searchOnly = Pwsh.Run("New-BtrfsSwapfile $p -Size 1MB", ("p", Path.Combine(o711, "swap")));
            }

            Assert.True(merged.ErrorIds.SequenceEqual(new[] { "AccessDenied" }), Said(merged));
            Assert.Equal(dropBox, merged.Errors[0].TargetObject);
            Assert.Contains($"this user may not read the directory '{dropBox}'", merged.Errors[0].ToString(), StringComparison.Ordinal);
            Assert.EndsWith($"The files below '{sub}' were not copied.", merged.Errors[0].ToString(), StringComparison.Ordinal);
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(merge, "a.img"))); // the rest of the tree is merged
            Assert.Empty(Directory.GetFileSystemEntries(dropBox));
            Assert.True(hashed.ErrorIds.SequenceEqual(new[] { "AccessDenied" }), Said(hashed));
            Assert.Contains($"this user may not read the directory '{ownDir}'", hashed.Errors[0].ToString(), StringComparison.Ordinal);
            Assert.Empty(Directory.GetFileSystemEntries(ownDir));
            // The directory on the way this user may not enter is the one named (before: "Cannot open '…/closed/in':
            // Permission denied. Run as a user who can read the file", naming neither the directory nor the reason).
            string blocked = Path.GetDirectoryName(closed)!;
            foreach (PwshResult r in new[] { unreachable, below })
            {
                Assert.True(r.ErrorIds.SequenceEqual(new[] { "AccessDenied" }), Said(r));
                Assert.Contains($"may not enter the directory '{blocked}' (no search permission)", r.Errors[0].ToString(), StringComparison.Ordinal);
                Assert.DoesNotContain("read the file", r.Errors[0].ToString(), StringComparison.Ordinal);
            }

            // A directory this user may enter but neither read nor write (0711, root's): both said.
            Assert.True(searchOnly.ErrorIds.SequenceEqual(new[] { "AccessDenied" }), Said(searchOnly));
            Assert.Contains("may not read or write in the directory", searchOnly.Errors[0].ToString(), StringComparison.Ordinal);
            Assert.Equal(closedBefore, FileFacts.Of(closedFile));
            Assert.Empty(Directory.GetFileSystemEntries(o711));
        }

        [SkippableFact]
        public void ARefusalOfTheFileSystemIsOneErrorForTheWholeTree()
        {
            // Before: one error per file of a tree on xfs (only btrfs has extent items, NOCOW): 30 files, 30 times
            // the same sentence. The walk does not cross into other filesystems, so the first says it for all.
            string dir = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Xfs, "fs-refusal"), "tree")).FullName;
            Directory.CreateDirectory(Path.Combine(dir, "sub"));
            string[] files = { Path.Combine(dir, "a.img"), Path.Combine(dir, "b.img"), Path.Combine(dir, "sub", "c.img"), Path.Combine(dir, "sub", "d.img") };
            foreach (string f in files)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(64 << 10, 3));
            }

            var before = files.ToDictionary(f => f, FileFacts.Of);
            foreach ((string script, string id) in new[]
            {
                ("Measure-BtrfsUsage -LiteralPath $d -Recurse", "OperationNotSupported"),
                ("Measure-BtrfsUsage -LiteralPath $d -Recurse -Summary", "OperationNotSupported"),
                ("Get-BtrfsExtent -LiteralPath $d -Recurse -Exact", "OperationNotSupported"),
                ("ConvertTo-NoCow -LiteralPath $d -Recurse -Confirm:$false", "NoCowNotSupported"),
                ("ConvertFrom-NoCow -LiteralPath $d -Recurse -Confirm:$false", "NoCowNotSupported"),
                ("Set-NoCow -LiteralPath $d -Recurse -Confirm:$false", "NoCowNotSupported"),
            })
            {
                PwshResult r = Pwsh.Run(script, ("d", dir));
                Assert.True(r.ErrorIds.SequenceEqual(new[] { id }), script + ": " + string.Join(" / ", r.Errors));
                Assert.EndsWith($"The other files below '{dir}' are on the same filesystem: they are not walked.", r.Errors[0].ToString(), StringComparison.Ordinal);
                if (script.EndsWith("-Summary", StringComparison.Ordinal))
                {
                    Assert.Equal(0L, ((BtrfsUsageSummary)Assert.Single(r.Output).BaseObject).Files); // the totals of nothing measured, as Measure-Fragmentation -Summary gives
                }
                else
                {
                    Assert.Empty(r.Output);
                }
            }

            Assert.All(files, f => Assert.Equal(before[f], FileFacts.Of(f)));

            // With -CrossFileSystem the walk may reach other filesystems, and goes on: one error for this one, each of its
            // other files a verbose note (before: an error per file).
            PwshResult crossing = Pwsh.Run("Measure-BtrfsUsage -LiteralPath $d -Recurse -CrossFileSystem -Verbose", ("d", dir));
            Assert.Equal(new[] { "OperationNotSupported" }, crossing.ErrorIds);
            Assert.Equal(3, crossing.Verbose.Count(v => v.Message.Contains("refused as the other files on its filesystem were", StringComparison.Ordinal)));
        }

        [Fact]
        public void AListedLinkThatIsGoneOrNoLinkAnyMoreByItsTurnIsFileChangedSinceListed()
        {
            // New-BtrfsReflink -Recurse reads a listed link with readlinkat: removed by its turn (ENOENT), or a directory
            // now (EINVAL), it is what happened since, as for files (before: PathNotFound or InvalidArgument; a hostile
            // test with another user renaming a directory and a link into each other's place).
            foreach (int errno in new[] { Btrfs.Kernel.Errno.ENOENT, Btrfs.Kernel.Errno.EINVAL })
            {
                FileOperationException ex = FileOperationException.FromErrno(errno, "readlinkat", "/t/tree/lnk", "Cannot read the symbolic link");
                FileOperationException listed = FileOperationException.SinceListed(ex, "/t/tree/lnk", "Run the command again for it.");
                Assert.Equal(FileErrorKind.ChangedSinceListed, listed.Kind);
                Assert.Contains("removed or renamed after it was listed", listed.Message, StringComparison.Ordinal);
            }

            FileOperationException denied = FileOperationException.FromErrno(Btrfs.Kernel.Errno.EACCES, "readlinkat", "/t/tree/lnk", "Cannot read the symbolic link");
            Assert.Same(denied, FileOperationException.SinceListed(denied, "/t/tree/lnk", "Run the command again for it."));
        }

        [SkippableFact]
        public void AFileRemovedOrReplacedAfterTheWalkListedItIsFileChangedSinceListed()
        {
            // Before: "Cannot open '…': No such file or directory. Check the path." (PathNotFound) for a name the
            // user never typed: the walk listed it, and it was gone (or a link) by its turn.
            string dir = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "listed-gone"), "tree")).FullName;
            string[] files = { Path.Combine(dir, "a.img"), Path.Combine(dir, "b.img"), Path.Combine(dir, "c.img") };
            foreach (string f in files)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(64 << 10, 4));
            }

            // At the first extent written (one file done), the other two change: one removed, one made a link.
            PwshResult r = Pwsh.Run(
                """
                Get-BtrfsExtent -LiteralPath $d -Recurse | ForEach-Object -Begin { $first = $null } -Process {
                    if (-not $first) {
                        $first = $_.Path
                        $others = @($files | Where-Object { $_ -ne $first })
                        Remove-Item -LiteralPath $others[0]
                        Move-Item -LiteralPath $others[1] -Destination ($others[1] + '.moved')
                        New-Item -ItemType SymbolicLink -Path $others[1] -Target $first | Out-Null
                    }
                } | Out-Null
                """,
                new Dictionary<string, object?> { ["d"] = dir, ["files"] = files });
            Assert.True(r.ErrorIds.SequenceEqual(new[] { "FileChangedSinceListed", "FileChangedSinceListed" }), string.Join(" / ", r.Errors));
            Assert.All(r.Errors, e => Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category));
            Assert.Equal(2, r.Errors.Select(e => (string)e.TargetObject).Intersect(files).Count());
            Assert.All(r.Errors, e => Assert.Contains("removed or renamed after it was listed", e.ToString(), StringComparison.Ordinal));
            Assert.All(r.Errors, e => Assert.DoesNotContain("Check the path", e.ToString(), StringComparison.Ordinal));

            // The same from New-BtrfsReflink -Recurse's own walk (merging into an existing tree: each file's result
            // comes as it is copied), two source files removed after the first was copied.
            string src = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "listed-gone-copy"), "src")).FullName;
            string[] sources = { Path.Combine(src, "a.img"), Path.Combine(src, "b.img"), Path.Combine(src, "c.img") };
            foreach (string f in sources)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(64 << 10, 5));
            }

            string into = Path.GetDirectoryName(Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(src)!, "to", "src")).FullName)!;
            PwshResult copied = Pwsh.Run(
                """
                New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -PassThru | ForEach-Object -Begin { $first = $null } -Process {
                    if (-not $first) {
                        $first = $_.Source
                        $files | Where-Object { $_ -ne $first } | Remove-Item
                    }
                } | Out-Null
                """,
                new Dictionary<string, object?> { ["s"] = src, ["d"] = into, ["files"] = sources });
            Assert.True(copied.ErrorIds.SequenceEqual(new[] { "FileChangedSinceListed", "FileChangedSinceListed" }), string.Join(" / ", copied.Errors));
            Assert.Equal(2, copied.Errors.Select(e => (string)e.TargetObject).Intersect(sources).Count());

            // A subdirectory listed, then removed (or replaced by another directory) before the walk enters it: the same
            // id, said of the directory (before, for one replaced: FileChangedDuringCopy, which no help names for a walk,
            // where nothing is copied; found by a hostile review). btrfs lists a directory's entries in the order they
            // were made: the subdirectories first, so that they are listed before the file's extents come out.
            string parent = fs.NewDirectory(TestFs.Btrfs, "listed-gone-dir");
            foreach ((string change, string says) in new[]
            {
                ("Remove-Item -LiteralPath $s -Recurse", "removed or renamed after it was listed"),
                ("Remove-Item -LiteralPath $s -Recurse; Move-Item -LiteralPath $o -Destination $s", "replaced by another file after it was listed"),
            })
            {
                string tree = Directory.CreateDirectory(Path.Combine(parent, "tree" + says.Length)).FullName;
                string sub = Directory.CreateDirectory(Path.Combine(tree, "sub")).FullName;
                string other = Directory.CreateDirectory(Path.Combine(tree, "other")).FullName;
                FileBuilder.WriteNew(Path.Combine(sub, "b.img"), FileBuilder.RandomBytes(64 << 10, 7));
                FileBuilder.WriteNew(Path.Combine(tree, "a.img"), FileBuilder.RandomBytes(64 << 10, 6));
                PwshResult entered = Pwsh.Run(
                    "Get-BtrfsExtent -LiteralPath $d -Recurse -Exclude other | ForEach-Object -Begin { $done = $false } -Process { if (-not $done) { $done = $true; " + change + " } } | Out-Null",
                    ("d", tree),
                    ("s", sub),
                    ("o", other));
                Assert.True(entered.ErrorIds.SequenceEqual(new[] { "FileChangedSinceListed" }), change + ": " + string.Join(" / ", entered.Errors));
                Assert.Equal(sub, entered.Errors[0].TargetObject);
                Assert.Contains(says, entered.Errors[0].ToString(), StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void OneDirectorysEntriesComeTogetherSoEachDirectoryIsOneGroup()
        {
            string root = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "groups"), "tree")).FullName;
            for (int d = 0; d < 4; d++)
            {
                Directory.CreateDirectory(Path.Combine(root, "d" + d, "inner"));
                File.WriteAllText(Path.Combine(root, "d" + d, "inner", "x.img"), "x");
            }

            for (int f = 0; f < 24; f++)
            {
                File.WriteAllText(Path.Combine(root, $"f{f}.img"), "x");
                File.WriteAllText(Path.Combine(root, "d" + (f % 4), $"g{f}.img"), "x");
            }

            foreach (string cmdlet in new[] { "Test-NoCow -Detailed", "Measure-Fragmentation", "Measure-BtrfsUsage" })
            {
                PwshResult r = Pwsh.Run($"{cmdlet} -LiteralPath $root -Recurse | ForEach-Object Directory", ("root", root));
                Assert.Empty(r.Errors);
                string[] directories = r.Output.Select(o => (string)o.BaseObject).ToArray();

                // The Directory property the views group by: one run per directory, never split (a directory
                // entry belongs to its parent's group).
                var runs = new List<string>();
                foreach (string d in directories)
                {
                    if (runs.Count == 0 || runs[^1] != d)
                    {
                        runs.Add(d);
                    }
                }

                Assert.True(runs.Count == runs.Distinct().Count(), $"{cmdlet}: {string.Join(" | ", runs)}");
                Assert.Contains(Path.Combine(root, "d2", "inner"), runs);
            }
        }

        [SkippableFact]
        public void TestCmdletsAnswerOncePerInputLikeTestPath()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "answers");
            string f = Path.Combine(dir, "a.img");
            FileBuilder.Chunks(f, 1, 64 * 1024, 64 * 1024, seed: 3);
            PwshResult r = Pwsh.Run("Test-NoCow -LiteralPath $f, $f; Test-BtrfsSwapfile -LiteralPath $f, $f; Test-Path -LiteralPath $f, $f", ("f", f));
            Assert.Empty(r.Errors);
            Assert.Equal(new object[] { false, false, false, false, true, true }, r.Output.Select(o => o.BaseObject));
        }
}
}
