namespace Btrfs.Tests
{
    using System;
    using System.Diagnostics;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A walk never re-resolves a path it classified: a directory of the tree swapped for a symbolic
    /// link to a root-only directory while a recursive cmdlet runs leads nowhere. Deterministically
    /// (swapped at a known moment, the files of the same names waiting behind the link) for every
    /// -Recurse cmdlet that changes files, and with a hostile user swapping every 2 ms.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class WalkSwapTests(LoopFileSystems fs)
    {
        private sealed record Layout(string Tree, string Victim, string Secret, string[] SecretFiles, FileFacts[] SecretBefore, string Moved)
        {
            internal void Swap()
            {
                Directory.Move(Victim, Moved);
                Directory.CreateSymbolicLink(Victim, Secret);
            }

            internal void AssertSecretUntouched()
            {
                Assert.Equal(SecretBefore, SecretFiles.Select(FileFacts.Of).ToArray());
                Assert.False(FileFacts.HasNoCow(Secret));
                Assert.All(SecretFiles, f => Assert.False(FileFacts.HasNoCow(f), f));
            }
        }

        /// <summary>tree/user/d/{a,b,c}.img owned by nobody, and a root-only secret/ outside the tree with files of the same names.</summary>
        private Layout Make(string hint, bool emptyFiles = false)
        {
            string root = fs.NewDirectory(TestFs.Btrfs, hint);
            string tree = Directory.CreateDirectory(Path.Combine(root, "tree")).FullName;
            string d = Directory.CreateDirectory(Path.Combine(tree, "user", "d")).FullName;
            string secret = Directory.CreateDirectory(Path.Combine(root, "secret")).FullName;
            string[] names = { "a.img", "b.img", "c.img" };
            foreach (string n in names)
            {
                FileBuilder.WriteNew(Path.Combine(d, n), emptyFiles ? Array.Empty<byte>() : FileBuilder.RandomBytes(64 * 1024, n[0]));
                FileBuilder.WriteNew(Path.Combine(secret, n), emptyFiles ? Array.Empty<byte>() : FileBuilder.RandomBytes(64 * 1024, n[0] + 100));
            }

            Shell.Run("chown", "-R", "65534:65534", Path.Combine(tree, "user"));
            Shell.Run("chmod", "0700", secret);
            string[] secretFiles = names.Select(n => Path.Combine(secret, n)).ToArray();
            return new Layout(tree, d, secret, secretFiles, secretFiles.Select(FileFacts.Of).ToArray(), d + ".real");
        }

        [SkippableTheory]
        [InlineData("ConvertTo-NoCow -LiteralPath $t -Recurse -Confirm:$false")]
        [InlineData("ConvertTo-NoCow -LiteralPath $t -Recurse -Confirm:$false; ConvertFrom-NoCow -LiteralPath $t -Recurse -Confirm:$false")]
        public void ADirectorySwappedForALinkAfterItWasListedIsNeverFollowed(string command)
        {
            // Before: files were opened by their full path, so after the swap tree/user/d/b.img resolved
            // through the link to secret/b.img, which was rewritten.
            Layout l = Make("swap-rewrite");
            bool swapped = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                command,
                (_, p) =>
                {
                    if (!swapped && p.Activity.EndsWith("/d/a.img", StringComparison.Ordinal))
                    {
                        swapped = true;
                        l.Swap();
                    }
                },
                ("t", l.Tree));
            Assert.True(swapped, "the hook never saw the first file of the directory");
            l.AssertSecretUntouched();
            Assert.Empty(r.Errors);
        }

        [SkippableFact]
        public void ADirectorySwappedForALinkBetweenItsListingAndItsTurnIsAnErrorAndThePassStaysOpen()
        {
            // Found by a hostile review: a directory exchanged with a link (renameat2 RENAME_EXCHANGE) while its parent
            // was walked was passed over as a link (a verbose note at most), nothing under it was measured, and a
            // scheduled defragmentation counted its pass as complete.
            Layout l = Make("swap-listed");
            string early = Path.Combine(Path.GetDirectoryName(l.Victim)!, "0-early.img"); // user/0-early.img, listed before user/d
            FileBuilder.WriteNew(early, FileBuilder.RandomBytes(64 << 10, 5)); // one extent: left alone, with a verbose note during the walk
            Directory.Move(l.Victim, l.Victim + ".tmp");
            Directory.Move(l.Victim + ".tmp", l.Victim); // a new directory index: listed after 0-early.img (btrfs lists in creation order)
            Shell.Run("sync");
            string state = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "swap-listed-state"), "s.db");
            bool swapped = false;
            PwshResult r = Pwsh.Run(
                "Invoke-BtrfsDefrag -LiteralPath $t -Recurse -StatePath $s -Confirm:$false -Verbose",
                new System.Collections.Generic.Dictionary<string, object?> { ["t"] = l.Tree, ["s"] = state },
                configure: ps => ps.Streams.Verbose.DataAdded += (_, e) =>
                {
                    if (!swapped && ps.Streams.Verbose[e.Index].Message.Contains("0-early.img", StringComparison.Ordinal))
                    {
                        swapped = true; // user/ is listed (d as a directory), d not opened yet
                        l.Swap();
                    }
                });
            Assert.True(swapped, "the hook never saw 0-early.img measured");
            System.Management.Automation.ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileChangedSinceListed,Btrfs.Commands.InvokeBtrfsDefragCommand", e.FullyQualifiedErrorId);
            Assert.Equal(l.Victim, e.TargetObject);
            Assert.Contains("replaced by another file after it was listed", e.Exception.Message, StringComparison.Ordinal);
            Btrfs.Core.DefragRunSummary summary = r.Output.Select(o => o.BaseObject).OfType<Btrfs.Core.DefragRunSummary>().Single();
            Assert.Equal(0, summary.PassesCompleted);
            l.AssertSecretUntouched();
        }

        [SkippableTheory]
        [InlineData(false)]
        [InlineData(true)]
        public void ADirectoryRenamedWhileItsParentIsListedIsStillWalked(bool depthFirst)
        {
            // Before (a hostile review): btrfs lists no entry renamed after the listing began (it stops at the index the
            // directory had when it was opened, and a rename gives the name a new one): a subdirectory exchanged with a
            // link during the listing was in neither name's place, and the 40 files below it were passed over without a
            // word. Now a directory that changed while it was listed is listed again for subdirectories not met.
            var order = depthFirst ? Btrfs.Core.WalkOrder.DepthFirst : Btrfs.Core.WalkOrder.EntriesFirst;
            string root = fs.NewDirectory(TestFs.Btrfs, "walk-renamed-" + order);
            string tree = Path.Combine(root, "tree"), decoy = Path.Combine(root, "decoy");
            Directory.CreateDirectory(tree);
            Directory.CreateDirectory(decoy);

            // Enough names before them that the first read of the listing (32 KiB) ends before "sub" and "link".
            for (int i = 0; i < 600; i++)
            {
                FileBuilder.WriteNew(Path.Combine(tree, $"t{i:D3}-{new string('x', 60)}"), new byte[] { 2 });
            }

            Directory.CreateDirectory(Path.Combine(tree, "sub"));
            for (int i = 0; i < 40; i++)
            {
                FileBuilder.WriteNew(Path.Combine(tree, "sub", "f" + i), new byte[] { 1 });
            }

            File.CreateSymbolicLink(Path.Combine(tree, "link"), "../decoy");
            var entries = new System.Collections.Generic.List<Btrfs.Core.WalkEntry>();
            foreach (Btrfs.Core.WalkEntry e in Btrfs.Core.TreeWalker.Walk(tree, false, Btrfs.Core.WalkFilter.None, null, order))
            {
                entries.Add(e);
                if (entries.Count == 2)
                {
                    // Once, while the tree's listing is under way: the directory is now "link", the link "sub".
                    using OpenFile dir = OpenFile.Open(tree, OpenOptions.AllowDirectory);
                    Assert.Equal(0, Btrfs.Interop.Libc.RenameAt2(dir.Handle, "sub", dir.Handle, "link", Btrfs.Interop.Libc.RENAME_EXCHANGE));
                }
            }

            Assert.DoesNotContain(entries, e => e.Kind == Btrfs.Core.WalkEntryKind.Error);
            Assert.Equal(600, entries.Count(e => e.Kind == Btrfs.Core.WalkEntryKind.File && e.Path.StartsWith(tree + "/t", StringComparison.Ordinal)));
            Assert.Equal(40, entries.Count(e => e.Kind == Btrfs.Core.WalkEntryKind.File && Path.GetDirectoryName(e.Path) == Path.Combine(tree, "link")));
            Assert.DoesNotContain(entries, e => e.Path.Contains("decoy", StringComparison.Ordinal));
        }

        [SkippableTheory]
        [InlineData("Test-NoCow -LiteralPath $t -Recurse -Detailed")]
        [InlineData("ConvertTo-NoCow -LiteralPath $t -Recurse -PassThru -Confirm:$false")]
        public void AFileRenamedIntoADirectoryWhileItIsListedIsStillProcessedOnce(string command)
        {
            // Before (a hostile test): btrfs lists no name added after the listing began, so a file renamed meanwhile, or
            // saved by renaming a new file over it (as editors and configuration tools save), was in neither place: not
            // processed and not said, and a Pester check of the tree passed without it. The directory is listed again
            // for names added since (a higher index). Here the first object out (the directory's, written before its
            // listing is read) makes the changes.
            string tree = fs.NewDirectory(TestFs.Btrfs, "walk-renamed-files");
            foreach (string n in new[] { "f1", "f2", "f3", "f4", "f5", "cfg" })
            {
                FileBuilder.WriteNew(Path.Combine(tree, n), FileBuilder.RandomBytes(4096, n[^1]));
            }

            System.Threading.Thread.Sleep(300); // born before the walk began: a renamed one is then proven the file listed before

            PwshResult r = Pwsh.Run(
                "$first = $true; " + command + " | ForEach-Object { if ($first) { $first = $false; "
                    + "Rename-Item -LiteralPath (Join-Path $t f2) f2.real; Remove-Item -LiteralPath (Join-Path $t f4); "
                    + "Set-Content -LiteralPath (Join-Path $t cfg.tmp) -Value saved; Move-Item -LiteralPath (Join-Path $t cfg.tmp) -Destination (Join-Path $t cfg) -Force }; $_.Path }",
                ("t", tree));

            // Listed before the changes (the first object out comes after the listing was read), f2 and f4 are said gone.
            Assert.All(r.Errors, e => Assert.StartsWith("FileChangedSinceListed,", e.FullyQualifiedErrorId, StringComparison.Ordinal));
            Assert.Subset(new object[] { Path.Combine(tree, "f2"), Path.Combine(tree, "f4") }.ToHashSet(), r.Errors.Select(e => e.TargetObject).ToHashSet());
            string[] files = r.Output.Select(o => o.BaseObject).OfType<string>().Where(p => p != tree).Select(p => Path.GetFileName(p)!).ToArray();

            // Where f2 was listed before it was renamed (its error says so), its file is not handed out again as f2.real.
            Assert.True(command.StartsWith("Test", StringComparison.Ordinal) ? r.Errors.Count == 0 : r.Errors.Count == 2, string.Join("\n", r.Errors));
            string[] expected = r.Errors.Count == 0 ? new[] { "cfg", "f1", "f2.real", "f3", "f5" } : new[] { "cfg", "f1", "f3", "f5" };
            Assert.Equal(expected, files.Order(StringComparer.Ordinal));

            // A file handed out and then renamed (a log rotated) is not handed out again under its new name (a review).
            if (command.StartsWith("Test", StringComparison.Ordinal))
            {
                PwshResult rotated = Pwsh.Run(
                    command + " | ForEach-Object { if ($_.Path -eq (Join-Path $t f3)) { Rename-Item -LiteralPath (Join-Path $t f3) f3.1 }; $_.Path }",
                    ("t", tree));
                Assert.Empty(rotated.Errors);
                string[] again = rotated.Output.Select(o => o.BaseObject).OfType<string>().Where(p => p != tree).Select(p => Path.GetFileName(p)!).ToArray();
                Assert.Equal(new[] { "cfg", "f1", "f2.real", "f3", "f5" }, again.Order(StringComparer.Ordinal));
                Assert.True(File.Exists(Path.Combine(tree, "f3.1")));
            }
            if (command.StartsWith("ConvertTo", StringComparison.Ordinal))
            {
                Assert.Equal(2, r.Errors.Count);
                Assert.All(expected, n => Assert.True(FileFacts.HasNoCow(Path.Combine(tree, n)), n));
            }
        }

        [SkippableTheory]
        [InlineData("btrfs")]
        [InlineData("xfs")]
        [InlineData("ext4")]
        public void FilesRenamedWhileTheirDirectoryIsListedAreHandedOutOnceEachAndHardLinksUnderEachName(string kind)
        {
            // Before (a hostile test): a file renamed during the listing was handed out under its old name and again under
            // its new one (xfs and ext4 list the new name in the same listing, btrfs in the listing again), so totals
            // counted it twice. Each file once; the two names of a hard-linked file each once, as always.
            string root = fs.NewDirectory(kind == "xfs" ? TestFs.Xfs : kind == "ext4" ? TestFs.Ext4 : TestFs.Btrfs, "walk-rotated");
            string tree = Directory.CreateDirectory(Path.Combine(root, "tree")).FullName;
            for (int i = 0; i < 600; i++)
            {
                FileBuilder.WriteNew(Path.Combine(tree, $"t{i:D3}-{new string('x', 60)}"), new byte[] { 2 }, fsync: false);
            }

            FileBuilder.WriteNew(Path.Combine(tree, "linked"), new byte[] { 3 });
            Shell.Run("ln", Path.Combine(tree, "linked"), Path.Combine(tree, "linked-too"));
            System.Threading.Thread.Sleep(300); // born before the walk began, as a renamed file must be proven to be
            var files = new System.Collections.Generic.List<Btrfs.Core.WalkEntry>();
            var errors = new System.Collections.Generic.List<Btrfs.Core.WalkEntry>();
            foreach (Btrfs.Core.WalkEntry e in Btrfs.Core.TreeWalker.Walk(tree, false, Btrfs.Core.WalkFilter.None, null, Btrfs.Core.WalkOrder.EntriesFirst))
            {
                if (e.Kind == Btrfs.Core.WalkEntryKind.Error)
                {
                    errors.Add(e);
                }

                if (e.Kind == Btrfs.Core.WalkEntryKind.File)
                {
                    files.Add(e);
                    if (files.Count == 2)
                    {
                        // Once, while the listing is under way: every t-file gets a new name.
                        for (int i = 0; i < 600; i++)
                        {
                            string name = $"{i:D3}-{new string('x', 60)}";
                            File.Move(Path.Combine(tree, "t" + name), Path.Combine(tree, "u" + name));
                        }
                    }
                }
            }

            Assert.Empty(errors);
            var inodes = files.Where(e => !e.Path.Contains("linked", StringComparison.Ordinal)).Select(e => e.Location!.Value.Inode).ToList();
            Assert.Equal(inodes.Count, inodes.Distinct().Count()); // none twice
            Assert.Equal(600, inodes.Count); // and none missed: the listing again hands out those renamed before they were read
            Assert.Equal(2, files.Count(e => e.Path.Contains("linked", StringComparison.Ordinal)));
        }

        [SkippableFact]
        public void ANewFileGivenTheNumberOfOneRemovedDuringTheListingIsHandedOut()
        {
            // ext4 gives a removed file's inode number to the next new file: one made while the directory is listed has
            // a number the walk handed out already, and is still handed out (it was born after the listing began; a
            // review of the walk's renamed-file check, which took a repeated number alone for a rename).
            using ExtraFileSystem own = fs.NewFileSystem("ext4", "64M");
            string tree = Directory.CreateDirectory(Path.Combine(own.MountPoint, "tree")).FullName;
            for (int i = 0; i < 50; i++)
            {
                FileBuilder.WriteNew(Path.Combine(tree, $"m{i:D2}"), new byte[] { 1 }, fsync: false);
            }

            System.Threading.Thread.Sleep(300);
            var files = new System.Collections.Generic.List<Btrfs.Core.WalkEntry>();
            ulong reused = 0;
            foreach (Btrfs.Core.WalkEntry e in Btrfs.Core.TreeWalker.Walk(tree, false, Btrfs.Core.WalkFilter.None, null, Btrfs.Core.WalkOrder.EntriesFirst))
            {
                if (e.Kind != Btrfs.Core.WalkEntryKind.File)
                {
                    continue;
                }

                files.Add(e);
                if (files.Count == 1)
                {
                    File.Delete(e.Path);
                    FileBuilder.WriteNew(Path.Combine(tree, "new-mail"), new byte[] { 2 }, fsync: false);
                    reused = ulong.Parse(Shell.Run("stat", "-c", "%i", Path.Combine(tree, "new-mail")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
                    Assert.Equal(e.Location!.Value.Inode, reused); // the number of the file just handed out and removed
                }
            }

            Assert.Single(files, e => e.Path == Path.Combine(tree, "new-mail"));
            Assert.Equal(51, files.Count);
        }

        [SkippableFact]
        public void SetNoCowRecurseMarksOnlyWhatTheWalkListed()
        {
            Layout l = Make("swap-mark", emptyFiles: true);
            bool swapped = false;
            PwshResult r = Pwsh.Run(
                "Set-NoCow -LiteralPath $t -Recurse -Verbose",
                new System.Collections.Generic.Dictionary<string, object?> { ["t"] = l.Tree },
                configure: ps => ps.Streams.Verbose.DataAdded += (_, e) =>
                {
                    if (!swapped && ps.Streams.Verbose[e.Index].Message.Contains("/d/a.img", StringComparison.Ordinal))
                    {
                        swapped = true;
                        l.Swap();
                    }
                });
            Assert.True(swapped);
            Assert.Empty(r.Errors);
            l.AssertSecretUntouched();
            Assert.True(FileFacts.HasNoCow(Path.Combine(l.Moved, "b.img")));
        }

        [SkippableTheory]
        [InlineData(true)]
        [InlineData(false)]
        public void AScheduledDefragOpensNothingThroughADirectorySwappedAfterItWasMeasured(bool scheduled)
        {
            // A scheduled run measures the whole tree first and defragments later, worst first. Before, each
            // file was opened again by its path for its turn: tree/user/d swapped for a link in between led
            // into secret/ (the inode check refused the files there, but only after they were opened).
            Layout l = Make("swap-sched");
            foreach (string n in new[] { "a.img", "b.img", "c.img" })
            {
                string f = Path.Combine(l.Victim, n);
                File.Delete(f);
                FileBuilder.Fragmented(f, 4 << 20, 60, seed: n[0]);
            }

            FileBuilder.Fragmented(Path.Combine(l.Tree, "first.img"), 4 << 20, 400, seed: 77); // the worst: its turn comes first
            Shell.Run("chown", "-R", "65534:65534", Path.Combine(l.Tree, "user"));
            Shell.Run("sync");

            using OpenWatch watch = OpenWatch.Start(l.Secret);
            bool swapped = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                scheduled ? "Invoke-BtrfsDefrag -LiteralPath $t -Recurse -Passes 1 -Confirm:$false" : "Invoke-BtrfsDefrag -LiteralPath $t -Recurse -Confirm:$false",
                (_, p) =>
                {
                    if (!swapped && ((p.Activity + " " + p.StatusDescription).Contains("first.img", StringComparison.Ordinal)))
                    {
                        swapped = true;
                        l.Swap();
                    }
                },
                ("t", l.Tree));
            Assert.True(swapped, "the hook never saw first.img being defragmented");
            Assert.Empty(r.Errors);
            string[] done = r.Output.Select(o => o.BaseObject).OfType<Btrfs.Core.DefragResult>().Where(d => !d.Skipped).Select(d => d.Path).ToArray();
            if (!scheduled)
            {
                // The walk had d open before the swap (listed with its parent): it defragments the real
                // files, now under d.real, through that descriptor.
                Assert.Equal(4, done.Length);
                Assert.All(new[] { "a.img", "b.img", "c.img" }, n => Assert.InRange(Filefrag.Extents(Path.Combine(l.Moved, n)).Count, 1, 4));
            }
            else
            {
                Assert.Equal(new[] { Path.Combine(l.Tree, "first.img") }, done);
                Btrfs.Core.DefragRunSummary summary = r.Output.Select(o => o.BaseObject).OfType<Btrfs.Core.DefragRunSummary>().Single();
                Assert.Equal(3, summary.FilesChanged);
                Assert.Equal(1, summary.FilesDefragmented);
            }

            Assert.Empty(watch.Opened());
            l.AssertSecretUntouched();
        }

        /// <summary>Every open(2) of a directory or of a file in it, as inotify (IN_OPEN) reports it, from a watcher started before.</summary>
        private sealed class OpenWatch : IDisposable
        {
            private const string Script = "import ctypes,os,struct,sys\nlibc=ctypes.CDLL(None,use_errno=True)\nfd=libc.inotify_init()\nassert libc.inotify_add_watch(fd,sys.argv[1].encode(),0x20)>=0\nprint('ready',flush=True)\nwhile True:\n  b=os.read(fd,65536);i=0\n  while i<len(b):\n    w,m,c,n=struct.unpack_from('iIII',b,i);print('open',b[i+16:i+16+n].rstrip(bytes(1)).decode() or '.',flush=True);i+=16+n\n";
            private readonly Process process;
            private readonly System.Collections.Concurrent.ConcurrentQueue<string> lines = new();

            private OpenWatch(Process process) => this.process = process;

            internal static OpenWatch Start(string dir)
            {
                var psi = new ProcessStartInfo("python3") { UseShellExecute = false, RedirectStandardOutput = true };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add(Script);
                psi.ArgumentList.Add(dir);
                var w = new OpenWatch(Process.Start(psi)!);
                _ = System.Threading.Tasks.Task.Run(() =>
                {
                    while (w.process.StandardOutput.ReadLine() is string line)
                    {
                        w.lines.Enqueue(line);
                    }
                });
                var ready = Stopwatch.StartNew();
                while (!w.lines.Contains("ready"))
                {
                    Assert.True(ready.Elapsed < TimeSpan.FromSeconds(10), "the inotify watcher did not start");
                    System.Threading.Thread.Sleep(10);
                }

                // The watch sees opens: prove it before relying on it seeing none.
                using (File.OpenRead(Path.Combine(dir, "a.img")))
                {
                }

                var clock = Stopwatch.StartNew();
                while (!w.lines.Contains("open a.img"))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the inotify watch saw no open");
                    System.Threading.Thread.Sleep(10);
                }

                w.lines.Clear();
                return w;
            }

            internal string[] Opened()
            {
                System.Threading.Thread.Sleep(200);
                return lines.ToArray();
            }

            public void Dispose()
            {
                process.Kill();
                process.WaitForExit();
                process.Dispose();
            }
        }

        [SkippableFact]
        public void AHostileUserSwappingEveryTwoMillisecondsGetsNothingRewritten()
        {
            Layout l = Make("swap-race");
            // nobody owns tree/user and swaps tree/user/d for a link to the root-only secret/ every 2 ms.
            string script = $"import os,time\nd='{l.Victim}'\nwhile True:\n  try:\n    os.rename(d, d+'.real'); os.symlink('{l.Secret}', d); time.sleep(0.002)\n    os.unlink(d); os.rename(d+'.real', d); time.sleep(0.002)\n  except OSError: pass\n";
            var psi = new ProcessStartInfo("setpriv") { UseShellExecute = false };
            foreach (string a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "/usr/bin/python3", "-c", script })
            {
                psi.ArgumentList.Add(a);
            }

            using Process swapper = Process.Start(psi)!;
            try
            {
                var clock = Stopwatch.StartNew();
                int runs = 0;
                while (runs < 3 || clock.Elapsed < TimeSpan.FromSeconds(4)) // at least three runs, however slow each is
                {
                    Pwsh.Run("ConvertTo-NoCow -LiteralPath $t -Recurse -Confirm:$false -ErrorAction SilentlyContinue; ConvertFrom-NoCow -LiteralPath $t -Recurse -Confirm:$false -ErrorAction SilentlyContinue", ("t", l.Tree));
                    runs++;
                }
            }
            finally
            {
                swapper.Kill();
                swapper.WaitForExit();
            }

            l.AssertSecretUntouched();
        }

        [SkippableTheory]
        [InlineData("inner")]
        [InlineData("link")]
        public void AReflinkTreeIntoItselfIsRefusedBeforeAnythingIsCreated(string how)
        {
            // Before: New-BtrfsReflink tree -Destination tree/d1/inner -Recurse copied into itself until
            // paths reached PATH_MAX.
            string root = fs.NewDirectory(TestFs.Btrfs, "into-itself");
            string tree = Directory.CreateDirectory(Path.Combine(root, "tree")).FullName;
            Directory.CreateDirectory(Path.Combine(tree, "d1"));
            FileBuilder.WriteNew(Path.Combine(tree, "d1", "x.img"), FileBuilder.RandomBytes(8192, 1));
            string dest = Path.Combine(tree, "d1", "inner");
            if (how == "link")
            {
                // Through a symbolic link elsewhere: no string prefix of the source in the path.
                string link = Path.Combine(root, "elsewhere");
                Directory.CreateSymbolicLink(link, Path.Combine(tree, "d1"));
                dest = Path.Combine(link, "inner");
            }

            string[] before = Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
            PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $t -Destination $d -Recurse", ("t", tree), ("d", dest));
            Assert.Equal("DestinationInsideSource", Assert.Single(r.ErrorIds));
            Assert.Contains("inside the source tree", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray());

            // A sibling whose name merely starts like the source is fine.
            string sibling = Path.Combine(root, "tree2");
            r = Pwsh.Run("New-BtrfsReflink -LiteralPath $t -Destination $d -Recurse", ("t", tree), ("d", sibling));
            Assert.Empty(r.Errors);
            Assert.Equal(FileFacts.Hash(Path.Combine(tree, "d1", "x.img")), FileFacts.Hash(Path.Combine(sibling, "d1", "x.img")));
        }

        [SkippableFact]
        public void AMirroredDestinationDirectorySwappedForALinkIsNeverWrittenThrough()
        {
            // The destination side: tree/sub is mirrored to copy/sub; when copy/sub is swapped for a
            // link to a root-only directory after it was made, the files go to the directory made (now
            // copy/sub.real), never through the link.
            string root = fs.NewDirectory(TestFs.Btrfs, "dest-swap");
            string tree = Directory.CreateDirectory(Path.Combine(root, "tree")).FullName;
            Directory.CreateDirectory(Path.Combine(tree, "sub"));
            foreach (string n in new[] { "a.img", "b.img" })
            {
                FileBuilder.WriteNew(Path.Combine(tree, "sub", n), FileBuilder.RandomBytes(8192, n[0]));
            }

            string secret = Directory.CreateDirectory(Path.Combine(root, "secret")).FullName;
            // Through Core, so the swap comes exactly after the directory is made and before its files.
            string copy2 = Path.Combine(root, "copy2");
            var session = new Btrfs.Core.ReflinkSession();
            using (session)
            using (var mirror = Btrfs.Core.TreeMirror.Start(tree, copy2, new Btrfs.Core.ReflinkOptions(), session, false))
            {
                foreach (Btrfs.Core.MirrorItem item in mirror.Items())
                {
                    switch (item.Kind)
                    {
                        case Btrfs.Core.MirrorItemKind.Directory:
                            mirror.MakeDirectory(item);
                            if (item.Source.EndsWith("/sub", StringComparison.Ordinal))
                            {
                                Directory.Move(item.Target, item.Target + ".real");
                                Directory.CreateSymbolicLink(item.Target, secret);
                            }

                            break;
                        case Btrfs.Core.MirrorItemKind.File:
                            using (Btrfs.Core.ReflinkCopy c = mirror.PrepareFile(item))
                            {
                                c.Run();
                            }

                            break;
                    }
                }
            }

            Assert.Empty(Directory.GetFileSystemEntries(secret));
            Assert.Equal(new[] { "a.img", "b.img" }, Directory.GetFiles(Path.Combine(copy2, "sub.real")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        }

        [SkippableFact]
        public void ABindMountInsideTheSourceThatReachesTheDestinationNeverMakesTheCopyCopyItself()
        {
            // Before: src/mnt, a bind mount of the destination's parent, was entered (same st_dev), and the
            // copy copied itself 6,614 levels deep until it ran out of file descriptors.
            string root = fs.NewDirectory(TestFs.Btrfs, "bindloop");
            string src = Directory.CreateDirectory(Path.Combine(root, "src", "mnt")).Parent!.FullName;
            string pub = Directory.CreateDirectory(Path.Combine(root, "pub")).FullName;
            FileBuilder.WriteNew(Path.Combine(src, "f.img"), FileBuilder.RandomBytes(8192, 1));
            string mnt = Path.Combine(src, "mnt");
            Shell.Run("mount", "--bind", pub, mnt);
            try
            {
                // By default another mount (a bind mount too) is not entered.
                PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Verbose", ("s", src), ("d", Path.Combine(pub, "copy")));
                Assert.Empty(r.Errors);
                Assert.Contains(r.Verbose, v => v.Message.Contains("another filesystem", StringComparison.Ordinal));
                Assert.False(Directory.Exists(Path.Combine(pub, "copy", "mnt", "copy")));
                Assert.True(File.Exists(Path.Combine(pub, "copy", "f.img")));

                // Asked to cross it, the walk meets the destination again: refused there, and it ends.
                r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -CrossFileSystem", ("s", src), ("d", Path.Combine(pub, "copy2")));
                Assert.Equal("DestinationInsideSource", Assert.Single(r.ErrorIds));
                Assert.Equal(FileFacts.Hash(Path.Combine(src, "f.img")), FileFacts.Hash(Path.Combine(pub, "copy2", "f.img")));
                Assert.False(Directory.Exists(Path.Combine(pub, "copy2", "mnt", "copy2", "mnt")));

                // A bind mount of an ancestor inside a walked tree is a loop: reported, and the walk ends.
                Shell.Run("umount", mnt);
                Shell.Run("mount", "--bind", src, mnt);
                r = Pwsh.Run("Measure-Fragmentation -LiteralPath $s -Recurse -CrossFileSystem", ("s", src));
                Assert.Equal("DirectoryLoop", Assert.Single(r.ErrorIds));
                Assert.Contains("loop", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Single(r.Output);
            }
            finally
            {
                Shell.Try("umount", mnt);
            }
        }

        [SkippableFact]
        public void ADestinationRenamedMidRunIsSyncedThroughItsDescriptorWithoutAnError()
        {
            // Before: the final sync opened the destination by its path again: renamed, the run ended in a
            // terminating error (and no sync); swapped for a link, another filesystem was synced.
            string root = fs.NewDirectory(TestFs.Btrfs, "flush");
            string src = Directory.CreateDirectory(Path.Combine(root, "src", "d0")).Parent!.FullName;
            for (int i = 0; i < 6; i++)
            {
                FileBuilder.WriteNew(Path.Combine(src, "d0", $"f{i}.img"), FileBuilder.RandomBytes(8192, i));
            }

            string dest = Path.Combine(root, "dest");
            PwshResult r = Pwsh.Run(
                "$moved = $false; New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -PassThru | ForEach-Object { if (-not $moved) { Rename-Item -LiteralPath $d -NewName dest.moved; $moved = $true }; $_ }",
                ("s", src),
                ("d", dest));
            Assert.Empty(r.Errors);
            Assert.Equal(6, r.Output.Count);
            Assert.Equal(6, Directory.GetFiles(Path.Combine(root, "dest.moved", "d0")).Length);
        }
    }
}
