namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// Every way a conversion can be refused or fail, on real filesystems: each proves the original is
    /// byte-identical (content, inode, mode, owner, times, attributes), still in place, and that
    /// nothing was left behind in its directory.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class ConvertNoCowFaultTests(LoopFileSystems fs)
    {
        private const string Yes = " -Confirm:$false";

        private sealed record Original(string Path, string Dir, FileFacts Facts, string[] Listing)
        {
            internal static Original Of(string path)
            {
                string dir = System.IO.Path.GetDirectoryName(path)!;
                return new Original(path, dir, FileFacts.Of(path), FileFacts.Listing(dir));
            }

            internal void AssertUntouched(params string[] alsoInDirectory)
            {
                Assert.Equal(Facts, FileFacts.Of(Path));
                Assert.Equal(Listing.Concat(alsoInDirectory).OrderBy(n => n, StringComparer.Ordinal), FileFacts.Listing(Dir));
            }
        }

        private static ErrorRecord AssertRefused(PwshResult r, string path, string id, ErrorCategory category, params string[] parts)
        {
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal(id + ",Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Equal(category, e.CategoryInfo.Category);
            Assert.Equal(path, e.TargetObject);
            foreach (string p in parts.Append(path))
            {
                Assert.Contains(p, e.Exception.Message, StringComparison.Ordinal);
            }

            return e;
        }

        private string File(TestFs where, string hint, int megabytes = 2)
        {
            string path = Path.Combine(fs.NewDirectory(where, hint), "vm.img");
            FileBuilder.Chunks(path, megabytes, 1 << 20, 1 << 20, fsyncEach: false);
            return path;
        }

        [SkippableFact]
        public void AFileHeldOpenByAnotherProcessIsRefused()
        {
            string file = File(TestFs.Btrfs, "open");
            var before = Original.Of(file);
            using ChildProcess holder = ChildProcess.HoldingOpen(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
            AssertRefused(r, file, "FileInUse", ErrorCategory.ResourceBusy, $"pid {holder.Pid}", "open", "writes would be lost");
            before.AssertUntouched();
        }

        [SkippableFact]
        public void AFileMappedByAnotherProcessIsRefused()
        {
            string file = File(TestFs.Btrfs, "mapped");
            var before = Original.Of(file);
            using ChildProcess mapper = ChildProcess.Mapping(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
            AssertRefused(r, file, "FileInUse", ErrorCategory.ResourceBusy, $"pid {mapper.Pid}", "mapped");
            before.AssertUntouched();
        }

        [SkippableTheory]
        [InlineData("+i", "FileIsImmutable", "immutable")]
        [InlineData("+a", "FileIsAppendOnly", "append-only")]
        public void ImmutableAndAppendOnlyFilesAreRefusedEvenWithForce(string attribute, string id, string word)
        {
            string file = File(TestFs.Btrfs, "attr");
            Shell.Run("chattr", attribute, file);
            try
            {
                var before = Original.Of(file);
                PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
                AssertRefused(r, file, id, ErrorCategory.PermissionDenied, word);
                before.AssertUntouched();
            }
            finally
            {
                Shell.Run("chattr", "-i", "-a", file);
            }
        }

        [SkippableTheory]
        [InlineData("+a", "FileIsAppendOnly", "append-only (chattr +a)")]
        [InlineData("+i", "FileIsImmutable", "immutable (chattr +i)")]
        public void AFileInAnAppendOnlyOrImmutableDirectoryIsRefusedBeforeItIsCopied(string attribute, string id, string word)
        {
            // Before: in an append-only directory the whole file was copied, then the kernel refused the rename (EPERM),
            // and each attempt left its full-size hidden temporary file, which could not be removed there; the
            // original's change time moved (the run's mark set and taken off). Found by a hostile review.
            string file = File(TestFs.Btrfs, "dirattr");
            string dir = Path.GetDirectoryName(file)!;
            string other = Path.Combine(dir, "other.img");
            FileBuilder.WriteNew(other, FileBuilder.RandomBytes(64 << 10, 21));
            string swap = Path.Combine(dir, "swapfile");
            FileBuilder.WriteNew(swap, FileBuilder.RandomBytes(4096, 22));
            var before = Original.Of(file);
            var otherBefore = Original.Of(other);
            var swapBefore = Original.Of(swap);
            Shell.Run("chattr", attribute, dir);
            PwshResult whatIf, run, reflink, swapfile;
            try
            {
                whatIf = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", ("f", file));
                run = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
                reflink = Pwsh.Run("New-BtrfsReflink -LiteralPath $f -Destination $o -Force" + Yes, ("f", file), ("o", other));
                swapfile = Pwsh.Run("New-BtrfsSwapfile -Path $s -Size 16MB -Force" + Yes, ("s", swap));
                before.AssertUntouched();
                otherBefore.AssertUntouched();
                swapBefore.AssertUntouched();
            }
            finally
            {
                Shell.Run("chattr", "-i", "-a", dir);
            }

            AssertRefused(whatIf, file, id, ErrorCategory.PermissionDenied, "its directory '" + dir + "' is " + word, "Nothing was changed");
            AssertRefused(run, file, id, ErrorCategory.PermissionDenied, "its directory '" + dir + "' is " + word);
            foreach ((PwshResult r, string target) in new[] { (reflink, other), (swapfile, swap) })
            {
                ErrorRecord e = Assert.Single(r.Errors);
                Assert.StartsWith(id + ",", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Equal(target, e.TargetObject);
                Assert.Contains("its directory '" + dir + "' is " + word, e.Exception.Message, StringComparison.Ordinal);
            }
        }

        [SkippableFact]
        public void TooLittleFreeSpaceIsRefusedBeforeAnythingIsWritten()
        {
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "256M");
            string file = Path.Combine(small.MountPoint, "big.img");
            FileBuilder.Chunks(file, 150, 1 << 20, 1 << 20, fsyncEach: false);
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            AssertRefused(r, file, "InsufficientSpace", ErrorCategory.ResourceUnavailable, "needs 150 MiB", "is free");
            before.AssertUntouched();
        }

        [SkippableFact]
        public void SpacePreallocatedPastTheEndCountsInWhatTheCopyNeeds()
        {
            // The copy preallocates again what the original has preallocated past its end (fallocate -n). Before, the
            // check and -WhatIf counted the data alone ("needs 1.00 MiB"), and the run then ran out of space at once,
            // saying "after copying 0 B of 1.00 MiB". Found by a hostile review.
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "512M");
            string file = Path.Combine(small.MountPoint, "db.img");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(1 << 20, 11));
            Shell.Run("fallocate", "-n", "-o", "1M", "-l", "120M", file);
            PwshResult whatIf = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file }, captureHost: true);
            Assert.Empty(whatIf.Errors);
            string said = whatIf.HostText.Replace("\n", " ", StringComparison.Ordinal);
            Assert.Contains("Rewrite 1.00 MiB of data (file size 1.00 MiB)", said, StringComparison.Ordinal);
            Assert.Contains("needs 121 MiB (120 MiB of it preallocated past the end of the file, as the original has it) of the ", said, StringComparison.Ordinal);

            string filler = Path.Combine(small.MountPoint, "filler.bin");
            Shell.Run("sync");
            Shell.Run("fallocate", "-l", (new DriveInfo(small.MountPoint).AvailableFreeSpace - (60 << 20)).ToString(System.Globalization.CultureInfo.InvariantCulture), filler);
            Shell.Run("sync");
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            AssertRefused(r, file, "InsufficientSpace", ErrorCategory.ResourceUnavailable, "needs 121 MiB (120 MiB of it preallocated past the end of the file", "is free", "Nothing was changed");
            before.AssertUntouched();

            // With the space there, the copy has the same preallocation past its end.
            System.IO.File.Delete(filler);
            Shell.Run("sync");
            PwshResult done = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(done.Errors);
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(before.Facts.Sha256, FileFacts.Hash(file));
            Assert.Contains(Filefrag.Extents(file), e => e.Flags.Contains("unwritten") && e.Logical >= 1 << 20);
        }

        [SkippableFact]
        public void SpaceFreedJustNowCountsAsFree()
        {
            // btrfs counts deleted data free only once its transaction commits (up to 30 s later). Before: a
            // conversion right after the user freed space, as the refusal tells them to, was refused again, with
            // less free than there was. Found by a hostile review.
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "512M");
            string file = Path.Combine(small.MountPoint, "big.img");
            FileBuilder.Chunks(file, 150, 1 << 20, 1 << 20, fsyncEach: false);
            string filler = Path.Combine(small.MountPoint, "filler.bin");
            Shell.Run("fallocate", "-l", (new DriveInfo(small.MountPoint).AvailableFreeSpace - (16 << 20)).ToString(System.Globalization.CultureInfo.InvariantCulture), filler);
            Shell.Run("sync");
            string hash = FileFacts.Hash(file);
            System.IO.File.Delete(filler);
            long statfsNow = new DriveInfo(small.MountPoint).AvailableFreeSpace;
            Assert.True(statfsNow < 150L << 20, $"statfs already counts the deleted filler free ({statfsNow} bytes): the case is not made");
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.True(r.Errors.Count == 0, $"{string.Join("; ", r.Errors)} (statfs said {statfsNow} free right after the delete)");
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(hash, FileFacts.Hash(file));
        }

        [SkippableFact]
        public void RunningOutOfSpaceMidCopyEndsCleanly()
        {
            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "512M");
            string dir = Directory.CreateDirectory(Path.Combine(small.MountPoint, "d")).FullName;
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 100, 1 << 20, 1 << 20, fsyncEach: false);
            var before = Original.Of(file);
            string filler = Path.Combine(small.MountPoint, "filler");
            bool filled = false;

            PwshResult r = Pwsh.RunWithProgressHook(
                "ConvertTo-NoCow -LiteralPath $f" + Yes,
                (_, p) =>
                {
                    if (!filled && p.PercentComplete > 0)
                    {
                        filled = true;
                        Shell.Try("dd", "if=/dev/zero", "of=" + filler, "bs=1M"); // until the filesystem is full
                    }
                },
                ("f", file));

            Assert.True(filled);
            ErrorRecord e = AssertRefused(r, file, "InsufficientSpace", ErrorCategory.ResourceUnavailable, "ran out of space after copying", "The original is unchanged");
            before.AssertUntouched();
            System.IO.File.Delete(filler);
            Assert.NotNull(e);
        }

        [SkippableFact]
        public void AReaderThatOpensTheFileDuringTheCopyIsRefusedAndTheAccessTimeIsKept()
        {
            // Before: the refusal left bytes, inode and modification time, but the module's own reading of the
            // original moved its access time (2001 to now), which a refused conversion must not change either.
            // Found by a hostile review.
            string file = File(TestFs.Btrfs, "atime", megabytes: 32);
            Shell.Run("touch", "-a", "-d", "2001-01-01 00:00:00", file);
            string atime = Shell.Run("stat", "-c", "%X", file).Trim();
            string inode = Shell.Run("stat", "-c", "%i %Y", file).Trim();
            ChildProcess? reader = null;
            try
            {
                PwshResult r = Pwsh.RunWithProgressHook(
                    "ConvertTo-NoCow -LiteralPath $f" + Yes,
                    (_, p) =>
                    {
                        if (reader is null && p.PercentComplete > 0)
                        {
                            reader = ChildProcess.HoldingOpen(file); // returns once it has the file open
                        }
                    },
                    ("f", file));

                Assert.NotNull(reader);
                Assert.Equal(atime, Shell.Run("stat", "-c", "%X", file).Trim()); // looked at before anything reads it
                AssertRefused(r, file, "FileInUse", ErrorCategory.ResourceBusy);
                Assert.Equal(inode, Shell.Run("stat", "-c", "%i %Y", file).Trim());
                Assert.False(FileFacts.HasNoCow(file));
            }
            finally
            {
                reader?.Dispose();
            }
        }

        [SkippableFact]
        public void AWriterAppendingDuringTheCopyAbortsItAndKeepsTheWrite()
        {
            string file = File(TestFs.Btrfs, "writer", megabytes: 32);
            string dir = Path.GetDirectoryName(file)!;
            string[] listing = FileFacts.Listing(dir);
            string inode = Shell.Run("stat", "-c", "%i", file);
            byte[] extra = FileBuilder.RandomBytes(4096, 9);
            bool wrote = false;

            PwshResult r = Pwsh.RunWithProgressHook(
                "ConvertTo-NoCow -LiteralPath $f" + Yes,
                (_, p) =>
                {
                    if (!wrote && p.PercentComplete > 0)
                    {
                        wrote = true;
                        using var w = new FileStream(file, FileMode.Append, FileAccess.Write);
                        w.Write(extra);
                    }
                },
                ("f", file));

            Assert.True(wrote);
            AssertRefused(r, file, "FileChangedDuringCopy", ErrorCategory.ResourceBusy, "changed while it was being copied", "size went from");
            Assert.Equal(inode, Shell.Run("stat", "-c", "%i", file)); // the same inode, with the writer's data in it
            Assert.Equal((32L << 20) + 4096, new FileInfo(file).Length);
            using (var f = new FileStream(file, FileMode.Open, FileAccess.Read))
            {
                f.Position = 32L << 20;
                byte[] tail = new byte[4096];
                f.ReadExactly(tail);
                Assert.Equal(extra, tail);
            }

            Assert.False(FileFacts.HasNoCow(file));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void AnOverwriteInPlaceDuringTheCopyAbortsItAndKeepsTheWrite()
        {
            string file = File(TestFs.Btrfs, "overwrite", megabytes: 32);
            string dir = Path.GetDirectoryName(file)!;
            string[] listing = FileFacts.Listing(dir);
            byte[] patch = FileBuilder.RandomBytes(4096, 11);
            bool wrote = false;

            PwshResult r = Pwsh.RunWithProgressHook(
                "ConvertTo-NoCow -LiteralPath $f" + Yes,
                (_, p) =>
                {
                    if (!wrote && p.PercentComplete > 0)
                    {
                        wrote = true;
                        FileBuilder.WriteAt(file, 0, patch); // a range the copy has already read
                    }
                },
                ("f", file));

            Assert.True(wrote);
            AssertRefused(r, file, "FileChangedDuringCopy", ErrorCategory.ResourceBusy, "changed while it was being copied", "written to");
            Assert.Equal(32L << 20, new FileInfo(file).Length);
            using (var f = new FileStream(file, FileMode.Open, FileAccess.Read))
            {
                byte[] head = new byte[4096];
                f.ReadExactly(head);
                Assert.Equal(patch, head);
            }

            Assert.False(FileFacts.HasNoCow(file));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void KillingTheConvertingProcessMidCopyLeavesTheOriginalAndNothingElse()
        {
            string file = File(TestFs.Btrfs, "sigkill", megabytes: 64);
            var before = Original.Of(file);
            using (ChildProcess child = ChildConverter.ConvertToNoCowPausing(file, 16L << 20))
            {
                string? line = child.ReadLine(TimeSpan.FromSeconds(60));
                Assert.True(line is not null, "the child ended before pausing: " + child.StdErr);
                Assert.StartsWith("paused ", line);
                child.Kill(); // SIGKILL mid-copy
            }

            before.AssertUntouched();
        }

        [SkippableTheory]
        [InlineData("TERM")]
        [InlineData("HUP")]
        public void EndingPwshWithASignalMidTreeLeavesEveryFileWholeAndNoHiddenName(string signal)
        {
            // systemd stopping a runbook (SIGTERM), or the terminal closing (SIGHUP), while files are in their
            // grace: before, the thread that waits the graces out just stopped with the process, and each such
            // file's original stayed under a hidden name (six at a time). Now the process's end waits for them.
            string? tool = RealPwsh.ToolDirectory;
            Requires.That(tool is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");
            string dir = fs.NewDirectory(TestFs.Btrfs, "signal-" + signal);
            var files = Enumerable.Range(0, 300).Select(i => Path.Combine(dir, $"f{i:D3}")).ToList();
            foreach ((string f, int i) in files.Select((f, i) => (f, i)))
            {
                FileBuilder.Chunks(f, 1, 64 * 1024, 64 * 1024, fsyncEach: false, seed: 600 + i);
            }

            var hashes = files.ToDictionary(f => f, FileFacts.Hash);
            var inodes = files.ToDictionary(f => f, f => Shell.Run("stat", "-c", "%i", f).Trim());
            string[] listing = FileFacts.Listing(dir);
            ulong InodeOf(string f) => FileStatus.OfPath(f, followLinks: false)?.Inode ?? 0;
            var inodeNumbers = files.ToDictionary(f => f, InodeOf);

            // Mid-tree for sure, not by timing: every open of the 101st file waits in the kernel until the signal is
            // sent (a fanotify permission mark left unanswered), so the run cannot finish the tree first.
            using OpensHeld held = OpensHeld.Of(files[100]);
            using (ChildProcess pwsh = ChildProcess.Start(
                "dotnet",
                Path.Combine(tool!, "pwsh.dll"),
                "-NoProfile",
                "-NonInteractive",
                "-Command",
                $"Import-Module '{RepoPaths.Manifest}' -ErrorAction Stop; 'ready'; ConvertTo-NoCow -LiteralPath '{dir}' -Recurse -Confirm:$false; 'done'"))
            {
                // Once some files are converted (and some are in their grace), the signal.
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (files.Take(40).Count(f => InodeOf(f) != inodeNumbers[f]) < 20 && clock.Elapsed < TimeSpan.FromSeconds(60))
                {
                    System.Threading.Thread.Sleep(5);
                }

                // Held until pwsh has ended: the signal ends it with its opener still waiting (the wait is killable).
                Shell.Run("kill", "-" + signal, pwsh.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
                int exitCode = pwsh.WaitForExit(TimeSpan.FromSeconds(30)); // throws if it did not end
                Assert.NotEqual(0, exitCode); // ended by the signal, not by finishing the tree
                held.Dispose();
            }

            int converted = 0;
            foreach (string f in files)
            {
                Assert.Equal(hashes[f], FileFacts.Hash(f));
                bool isNew = Shell.Run("stat", "-c", "%i", f).Trim() != inodes[f];
                Assert.Equal(isNew, FileFacts.HasNoCow(f));
                converted += isNew ? 1 : 0;
            }

            Assert.InRange(converted, 20, 100);
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void ASignalSomethingElseCancelsDoesNotStopLaterConversions()
        {
            // The module settles every file in its grace when SIGHUP or SIGTERM arrives, and lets no exchange
            // begin after that, since the process is about to end. Where another handler cancels the signal
            // (the process goes on), the next conversion waits a moment and goes on (before: it ended the
            // cmdlet with a terminating error).
            string dir = fs.NewDirectory(TestFs.Btrfs, "hupcancelled");
            string a = Path.Combine(dir, "a.img"), b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 2, 16 * 1024, 32 * 1024, fsyncEach: false, seed: 801);
            FileBuilder.Chunks(b, 2, 16 * 1024, 32 * 1024, fsyncEach: false, seed: 802);
            string tree = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
            FileBuilder.Chunks(Path.Combine(tree, "t.img"), 2, 16 * 1024, 32 * 1024, fsyncEach: false, seed: 803);
            RealPwsh.Result r = RealPwsh.Run(
                "Add-Type -TypeDefinition 'using System.Runtime.InteropServices; public static class KeepHup { public static PosixSignalRegistration R; public static void Hook() { R = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => c.Cancel = true); } }'\n"
                + "[KeepHup]::Hook()\nConvertTo-NoCow -LiteralPath $A -Confirm:$false\n/bin/kill -HUP $PID\nStart-Sleep -Milliseconds 1000\n"
                + "New-BtrfsReflink -LiteralPath $T -Destination $C -Recurse | Out-Null\nConvertTo-NoCow -LiteralPath $B -Confirm:$false\n'survived'",
                null,
                ("A", a),
                ("B", b),
                ("T", tree),
                ("C", Path.Combine(dir, "copy")));
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal("survived", r.Lines[^1]);
            Assert.True(FileFacts.HasNoCow(a) && FileFacts.HasNoCow(b), r.StdErr);

            // A tree copy begun after the signal is not stopped for it (a hostile review: it ended with StoppedBySignal,
            // the flag still set from the signal before).
            Assert.DoesNotContain("StoppedBySignal", r.StdErr, StringComparison.Ordinal);
            Assert.Equal(FileFacts.Hash(Path.Combine(tree, "t.img")), FileFacts.Hash(Path.Combine(dir, "copy", "t.img")));
        }

        [SkippableFact]
        public void StoppingThePipelineMidCopyLeavesTheOriginalAndNothingElse()
        {
            string file = File(TestFs.Btrfs, "stop", megabytes: 64);
            var before = Original.Of(file);
            bool stopped = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                "ConvertTo-NoCow -LiteralPath $f" + Yes,
                (ps, p) =>
                {
                    if (!stopped && p.PercentComplete >= 10)
                    {
                        stopped = true;
                        ps.BeginStop(null, null); // what Ctrl+C does
                    }
                },
                ("f", file));

            Assert.True(stopped);
            before.AssertUntouched();
            Assert.True(r.Stopped);
            Assert.Empty(r.Errors);
        }

        [SkippableFact]
        public void AReadOnlyMountIsRefused()
        {
            using ExtraFileSystem extra = fs.NewFileSystem("btrfs", "256M");
            string file = Path.Combine(extra.MountPoint, "vm.img");
            FileBuilder.Chunks(file, 2, 1 << 20, 1 << 20);
            extra.Remount(readOnly: true);
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
            AssertRefused(r, file, "ReadOnlyFileSystem", ErrorCategory.PermissionDenied, "mounted read-only");
            before.AssertUntouched();
        }

        [SkippableFact]
        public void AReadOnlySnapshotIsRefused()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "snap");
            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            FileBuilder.Chunks(Path.Combine(sv, "vm.img"), 2, 1 << 20, 1 << 20);
            string snap = Path.Combine(dir, "sv-ro");
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", sv, snap);
            string file = Path.Combine(snap, "vm.img");
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
            AssertRefused(r, file, "ReadOnlySnapshot", ErrorCategory.PermissionDenied, "read-only btrfs snapshot", "sv-ro");
            before.AssertUntouched();
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Xfs, "xfs")]
        [InlineData((int)TestFs.Ext4, "ext4")]
        [InlineData((int)TestFs.Tmpfs, "tmpfs")]
        public void AFilesystemWithoutNoCowIsRefused(int which, string name)
        {
            string file = File((TestFs)which, "nosupport");
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            AssertRefused(r, file, "NoCowNotSupported", ErrorCategory.NotImplemented, $"on {name}");
            before.AssertUntouched();
        }

        [SkippableFact]
        public void ASymbolicLinkIsNotConvertedThrough()
        {
            string file = File(TestFs.Btrfs, "link");
            string link = Path.Combine(Path.GetDirectoryName(file)!, "alias.img");
            System.IO.File.CreateSymbolicLink(link, file);
            var before = Original.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", link));
            AssertRefused(r, link, "PathIsSymbolicLink", ErrorCategory.InvalidArgument, file);
            before.AssertUntouched();
            Assert.Equal(FileFacts.Hash(file), FileFacts.Hash(link));
        }

        [SkippableFact]
        public void AnActiveSwapfileIsNeverConverted()
        {
            using var swap = new ActiveSwapfile(fs.NewDirectory(TestFs.Btrfs, "swap"));
            var before = Original.Of(swap.Path);
            PwshResult r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f -Force" + Yes, ("f", swap.Path));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileIsActiveSwapfile,Btrfs.Commands.ConvertFromNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Contains("swapoff", e.Exception.Message, StringComparison.Ordinal);
            before.AssertUntouched();
        }
    }
}
