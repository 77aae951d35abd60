namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// New-BtrfsSwapfile and Test-BtrfsSwapfile, with the kernel's own swapon as the judge: wherever
    /// Test-BtrfsSwapfile says true swapon succeeds, wherever it says false swapon fails.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class SwapfileTests(LoopFileSystems fs)
    {
        /// <summary>What the kernel says: swapon's exit code (and it is switched off again right away).</summary>
        private static Shell.Result SwapOn(string path)
        {
            Shell.Result r = Shell.Try("swapon", path);
            if (r.ExitCode == 0)
            {
                Shell.Run("swapoff", path);
            }

            return r;
        }

        /// <summary>The man page's sequence, with the steps a test wants to get wrong left out or reordered.</summary>
        private static string Manual(string dir, string name, bool noCow = true, bool allocate = true, bool header = true, string mode = "0600", bool noCowAfter = false, string size = "64M")
        {
            string p = Path.Combine(dir, name);
            Shell.Run("truncate", "-s", "0", p);
            if (noCow && !noCowAfter)
            {
                Shell.Run("chattr", "+C", p);
            }

            Shell.Run(allocate ? "fallocate" : "truncate", allocate ? "-l" : "-s", size, p);
            if (noCowAfter)
            {
                Shell.Run("chattr", "+C", p); // silently ignored: the file has blocks now
            }

            Shell.Run("chmod", mode, p);
            if (header)
            {
                Shell.Run("mkswap", p);
            }

            return p;
        }

        private static int OtherPage => Environment.SystemPageSize == 65536 ? 4096 : 65536;

        /// <summary>A swap header made for another page size (mkswap -p, as on an arm64 kernel with 64 KiB pages): a hostile test saw it called "no swap signature".</summary>
        private static string OtherPageSize(string p)
        {
            Shell.Run("mkswap", "-p", OtherPage.ToString(System.Globalization.CultureInfo.InvariantCulture), p);
            return p;
        }

        private static void AssertKernelAgrees(string path, SwapfileStatus s)
        {
            Shell.Result k = SwapOn(path);
            bool accepted = k.ExitCode == 0;
            bool safe = s.Permissions0600 && s.OwnedByRoot; // the rules swapon only warns about
            Assert.True(accepted == (s.IsValid || !safe && AllButMode(s)), $"Test-BtrfsSwapfile says {s.IsValid} ({s.ReasonText}), swapon exited {k.ExitCode}: {k.StdErr}");
        }

        /// <summary>
        /// While <paramref name="on"/> holds (undone by <paramref name="off"/>, whatever happens), Test-BtrfsSwapfile
        /// says invalid with <paramref name="reason"/>, and swapon refuses; afterwards it is valid and taken again.
        /// </summary>
        private static void AssertRefusedWhile(string file, string reason, Action on, Action off)
        {
            on();
            try
            {
                SwapfileStatus s = Expect.Swapfile(file);
                Assert.False(s.IsValid, s.ReasonText);
                Assert.Contains(reason, s.ReasonText, StringComparison.Ordinal);
                Assert.NotEqual(0, SwapOn(file).ExitCode);
            }
            finally
            {
                off();
            }

            AssertValidAndTaken(file);
        }

        /// <summary>Test-BtrfsSwapfile says valid, and the kernel's swapon takes it.</summary>
        private static SwapfileStatus AssertValidAndTaken(string path)
        {
            SwapfileStatus s = Expect.Swapfile(path);
            Assert.True(s.IsValid, s.ReasonText);
            AssertKernelAgrees(path, s);
            return s;
        }

        private static bool AllButMode(SwapfileStatus s) =>
            s.IsNoCow || s.FileSystem != FileSystemKind.Btrfs
            ? !s.IsCompressed && s.FullyAllocated && !s.IsShared && s.HasSwapSignature && s.SingleDevice && s.SingleDataProfile && s.SizeMatchesHeader
            : false;

        [SkippableFact]
        public void AQuotaThatIsUsedUpIsNamedNotAFullDisk()
        {
            // A qgroup limit on the subvolume, with the filesystem mostly free: before, "The filesystem has no room for it:
            // free some space" (EDQUOT) where df showed 1.3 GB free. Found by a hostile test. The copy a conversion makes
            // says so too.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "512M");
            string sv = Path.Combine(x.MountPoint, "q");
            Shell.Run("btrfs", "subvolume", "create", sv);
            Shell.Run("btrfs", "quota", "enable", x.MountPoint);
            Shell.Run("btrfs", "qgroup", "limit", "20M", sv);
            string file = Path.Combine(sv, "vm.img");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(12 << 20, 36));
            BtrfsProgs.Sync(x.MountPoint);
            string[] listing = FileFacts.Listing(sv);

            PwshResult swap = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 64MB", ("p", Path.Combine(sv, "swap")));
            PwshResult copy = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Confirm:$false", ("f", file));
            foreach ((PwshResult r, string says) in new[] { (swap, "A quota has no room left for it (a btrfs qgroup limit on its subvolume"), (copy, "A quota ran out of room after copying") })
            {
                ErrorRecord e = Assert.Single(r.Errors);
                Assert.StartsWith("InsufficientSpace,", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Contains(says, e.Exception.Message, StringComparison.Ordinal);
                Assert.DoesNotContain("free some space", e.Exception.Message, StringComparison.OrdinalIgnoreCase);
            }

            Assert.Equal(listing, FileFacts.Listing(sv));
        }

        [SkippableFact]
        public void ReplacingOneRemovesAKilledReplacementsLeftoverAndSaysSo()
        {
            // Before: New-BtrfsSwapfile -Force removed what a replacement killed in its grace had left (the file it
            // replaced, under the hidden name) without a word, where the other replacing cmdlets warn. Found by a
            // hostile review. The leftover is made as a killed run leaves it: the old file under the hidden name with
            // the run's "replaced" mark, and the file under the name with the same run's marker.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-leftover");
            string swap = Path.Combine(dir, "sf");
            string hidden = Path.Combine(dir, ".sf.~btrfs-999999999-0badc0de");
            FileBuilder.Chunks(swap, 1, 4096, 4096, fsyncEach: false);
            FileBuilder.Chunks(hidden, 4, 1 << 20, 1 << 20, fsyncEach: false);
            KilledReplacement.Mark(hidden, swap, "999999999-0badc0de");

            PwshResult r = Pwsh.Run("New-BtrfsSwapfile $p 32MB -Force -Confirm:$false", ("p", swap));
            Assert.Empty(r.Errors);
            Assert.Contains(".sf.~btrfs-999999999-0badc0de", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(new[] { "sf" }, FileFacts.Listing(dir));
            Assert.Equal(32L << 20, new FileInfo(swap).Length);
        }

        [SkippableFact]
        public void ATinyFileWhoseDataLivesInTheMetadataIsJustNotASwapfile()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-inline");
            string tiny = Path.Combine(dir, "t[1].txt"), next = Path.Combine(dir, "next.img");
            File.WriteAllText(tiny, "data\n");
            FileBuilder.Chunks(next, 2, 65536, 65536);
            Shell.Run("sync");
            Assert.Contains("inline", Shell.Run("filefrag", "-v", tiny), StringComparison.Ordinal);

            // Each file its answer, the second one too (a null chunk for the inline extent ended the command).
            PwshResult r = Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $a, $b", ("a", tiny), ("b", next));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { false, false }, r.Objects<bool>());
            Assert.Equal(2, Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $a, $b -Detailed", ("a", tiny), ("b", next)).Objects<SwapfileStatus>().Count());
        }

        /// <summary>Before: reading the header moved the access time of every file tested (relatime: when it was older than a day), a swapfile and a plain file alike.</summary>
        [SkippableFact]
        public void TestingAFileLeavesItsAccessTime()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-atime");
            string swap = Path.Combine(dir, "swap.img"), plain = Path.Combine(dir, "plain.img");
            Assert.Empty(Pwsh.Run("New-BtrfsSwapfile $p 16MB -Confirm:$false | Out-Null", ("p", swap)).Errors);
            FileBuilder.WriteNew(plain, FileBuilder.RandomBytes(1 << 20, 8));
            foreach (string f in new[] { swap, plain })
            {
                Shell.Run("touch", "-a", "-d", "2000-01-01", f);
            }

            string before = Shell.Run("stat", "-c", "%X", swap, plain);
            PwshResult r = Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $a, $b -Detailed | Out-Null; Test-BtrfsSwapfile -LiteralPath $a, $b | Out-Null", ("a", swap), ("b", plain));
            Assert.Empty(r.Errors);
            Assert.Equal(before, Shell.Run("stat", "-c", "%X", swap, plain));
        }

        [SkippableFact]
        public void TheCreatorsTakeLiteralPathAndMakeExactlyTheNameGiven()
        {
            // Before: New-BtrfsSwapfile -LiteralPath and New-BtrfsSubvolume -LiteralPath were "no parameter matches".
            string dir = fs.NewDirectory(TestFs.Btrfs, "creators-literal");
            string swap = Path.Combine(dir, "swap[1]"), lookAlike = Path.Combine(dir, "swap1");
            string subvolume = Path.Combine(dir, "vol[*]");
            FileBuilder.WriteNew(lookAlike, FileBuilder.RandomBytes(4096, 7));
            FileFacts before = FileFacts.Of(lookAlike);
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -LiteralPath $s -Size 1MB | Out-Null; New-BtrfsSubvolume -LiteralPath $v | Out-Null; New-BtrfsSwapfile -LP $t 1MB | Out-Null", ("s", swap), ("v", subvolume), ("t", Path.Combine(dir, "t?")));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { "swap1", "swap[1]", "t?", "vol[*]" }, Directory.EnumerateFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal(before, FileFacts.Of(lookAlike));
            Assert.Equal(0, SwapOn(swap).ExitCode);
            Assert.Equal("256", Shell.Run("stat", "-c", "%i", subvolume).Trim());
        }

        [SkippableFact]
        public void ALabelIsMeasuredInBytesAndNeverCut()
        {
            // Before: 16 × "ü" (32 bytes) passed the 16-character check and was silently cut to 8 characters.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swaplabel");
            string path = Path.Combine(dir, "swapfile");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", path), ("l", new string('ü', 16)));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("InvalidArgument,Btrfs.Commands.NewBtrfsSwapfileCommand", e.FullyQualifiedErrorId);
            Assert.Contains("32 bytes in UTF-8 and the swap header holds 16", e.Exception.Message, StringComparison.Ordinal);
            Assert.Empty(FileFacts.Listing(dir));

            // Eight of them fit exactly, and come back whole.
            r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", path), ("l", new string('ü', 8)));
            Assert.Empty(r.Errors);
            byte[] field = new byte[16];
            using (FileStream f = File.OpenRead(path))
            {
                f.Position = 1052; // the label field of the swap header (what swaplabel and blkid read)
                f.ReadExactly(field);
            }

            Assert.Equal(new string('ü', 8), System.Text.Encoding.UTF8.GetString(field));

            // A control character is refused (before: a newline went into the header; a hostile review).
            string other = Path.Combine(dir, "other");
            foreach (string bad in new[] { "x\ny", "tab\there" })
            {
                ErrorRecord c = Assert.Single(Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", other), ("l", bad)).Errors);
                Assert.Equal("InvalidArgument,Btrfs.Commands.NewBtrfsSwapfileCommand", c.FullyQualifiedErrorId);
                Assert.Contains("control character", c.Exception.Message, StringComparison.Ordinal);
                Assert.False(File.Exists(other));
            }

            // Whitespace at the end is refused: blkid and swaplabel drop it (before: "  " was written and shown as the label,
            // and blkid showed none; a hostile test). Inside a label it stays, as blkid shows it.
            foreach (string bad in new[] { "  ", "swap " })
            {
                ErrorRecord c = Assert.Single(Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", other), ("l", bad)).Errors);
                Assert.Equal("InvalidArgument,Btrfs.Commands.NewBtrfsSwapfileCommand", c.FullyQualifiedErrorId);
                Assert.Contains(bad == "  " ? "no label at all" : "show as 'swap'", c.Exception.Message, StringComparison.Ordinal);
                Assert.False(File.Exists(other));
            }

            Assert.Empty(Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", other), ("l", "my swap")).Errors);
            Assert.Equal("my swap", Shell.Run("blkid", "-o", "value", "-s", "LABEL", other).Trim());
            File.Delete(other);

            // Half of a surrogate pair is refused (before: written as U+FFFD, not the label asked for; a hostile test); a whole pair is kept.
            ErrorRecord half = Assert.Single(Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", other), ("l", "a\uD83D")).Errors);
            Assert.Equal("InvalidArgument,Btrfs.Commands.NewBtrfsSwapfileCommand", half.FullyQualifiedErrorId);
            Assert.Contains("surrogate pair", half.Exception.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(other));
            Assert.Empty(Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Label $l", ("p", other), ("l", "a\uD83D\uDE00")).Errors);
            using (FileStream f = File.OpenRead(other))
            {
                f.Position = 1052;
                f.ReadExactly(field);
            }

            Assert.Equal("a\uD83D\uDE00", System.Text.Encoding.UTF8.GetString(field).TrimEnd('\0'));
        }

        [SkippableFact]
        public void ANewSwapfileIsValidAndTheKernelTakesIt()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "newswap");
            string path = Path.Combine(dir, "swapfile");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 64MB -Label testswap", ("p", path));
            Assert.Empty(r.Errors);
            SwapfileStatus s = Assert.Single(r.Objects<SwapfileStatus>());
            Assert.True(s.IsValid, s.ReasonText);
            Assert.Equal("valid: swapon accepts it", s.ReasonText);
            Assert.Equal((64L << 20, true, false, true, false, true, true, true, true, true), (s.Size, s.IsNoCow, s.IsCompressed, s.FullyAllocated, s.IsShared, s.HasSwapSignature, s.Permissions0600, s.SingleDevice, s.SingleDataProfile, s.SizeMatchesHeader));
            Assert.Contains('C', FileFacts.Attributes(path));
            Assert.Equal("600", Shell.Run("stat", "-c", "%a", path).Trim());
            Assert.Equal(0, SwapOn(path).ExitCode);
            Assert.True(Pwsh.Run("Test-BtrfsSwapfile $p", ("p", path)).Objects<bool>().Single());

            // The header is what swaplabel and blkid read.
            string blkid = Shell.Run("blkid", "-p", "-o", "export", path);
            Assert.Contains("TYPE=swap", blkid, StringComparison.Ordinal);
            Assert.Contains("UUID=" + s.Uuid, blkid, StringComparison.Ordinal);
            Assert.Contains("LABEL=testswap", blkid, StringComparison.Ordinal);
            string label = Shell.Run("swaplabel", path);
            Assert.Contains("LABEL: testswap", label, StringComparison.Ordinal);
            Assert.Contains("UUID:  " + s.Uuid, label, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ActivateSwitchesItOnWithItsPriority()
        {
            string path = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "activate"), "swapfile");
            try
            {
                PwshResult r = Pwsh.Run("New-BtrfsSwapfile $p 32MB -Activate -Priority 7 -Confirm:$false", ("p", path));
                Assert.Empty(r.Errors);
                SwapfileStatus s = Assert.Single(r.Objects<SwapfileStatus>());
                Assert.True(s.IsActive);
                Assert.Equal("valid, and active (swap is on in it)", s.ReasonText);
                string line = File.ReadLines("/proc/swaps").Single(l => l.StartsWith(path, StringComparison.Ordinal));
                Assert.EndsWith("7", line.TrimEnd(), StringComparison.Ordinal);
            }
            finally
            {
                Shell.Try("swapoff", path);
            }
        }

        [SkippableFact]
        public void WhereNobodyCanBeAskedActivatingIsAClearErrorAndNothingIsMade()
        {
            // Before: pwsh -c with its input closed (cron, a CI job) failed at the question with
            // "Object reference not set to an instance of an object"; -NonInteractive with PowerShell's own
            // message. Either way: an error that says how to answer in advance, and the script goes on.
            string dir = fs.NewDirectory(TestFs.Btrfs, "activate-unasked");
            string path = Path.Combine(dir, "swapfile");
            const string Script = "New-BtrfsSwapfile -Path $p -Size 32MB -Activate -ErrorVariable e -ErrorAction SilentlyContinue; $e | ForEach-Object { '@@' + $_.FullyQualifiedErrorId; '@@' + $_.CategoryInfo.Category; '@@' + $_.TargetObject; '@@' + $_.Exception.Message }; '@@after'";
            try
            {
                RealPwsh.Result closed = RealPwsh.RunWithClosedInput(Script, ("p", path));
                foreach (RealPwsh.Result r in new[] { closed, RealPwsh.Run(Script, null, ("p", path)) })
                {
                    string[] lines = r.Marked;
                    Assert.True(lines.Length == 5, r.StdOut + r.StdErr);
                    Assert.StartsWith("ConfirmationNotPossible,", lines[0], StringComparison.Ordinal);
                    Assert.Equal("InvalidOperation", lines[1]);
                    Assert.Equal(path, lines[2]);
                    Assert.Contains("cannot prompt", lines[3], StringComparison.Ordinal);
                    Assert.Contains(r == closed ? "its input is at its end" : "it runs -NonInteractive", lines[3], StringComparison.Ordinal);
                    Assert.Contains("-Confirm:$false", lines[3], StringComparison.Ordinal);
                    Assert.Contains("Nothing was changed", lines[3], StringComparison.Ordinal);
                    Assert.Equal("after", lines[4]);
                    Assert.False(File.Exists(path));
                    Assert.DoesNotContain(dir, File.ReadAllText("/proc/swaps"), StringComparison.Ordinal); // not the whole table: a test of another collection may switch its own swapfile on meanwhile
                }
            }
            finally
            {
                Shell.Try("swapoff", path);
            }
        }

        /// <summary>The way to the directory goes through another user's link (to a directory of root's): refused, nothing made; root's own link is followed.</summary>
        [SkippableFact]
        public void ActivatingThroughAnotherUsersLinkIsRefusedBeforeAnythingIsMade()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "activate-link");
            string theirs = Directory.CreateDirectory(Path.Combine(dir, "theirs")).FullName;
            string target = Directory.CreateDirectory(Path.Combine(dir, "root-only")).FullName;
            Shell.Run("chmod", "700", target);
            Shell.Run("chown", "65534:65534", theirs);
            string link = Path.Combine(theirs, "to");
            File.CreateSymbolicLink(link, target);
            Shell.Run("chown", "-h", "65534:65534", link);
            // Another user's link on the way is refused with or without -Activate, as by every cmdlet that changes things
            // (PathIsSymbolicLink; before, without -Activate it was followed, and with it refused as UnsafeDirectory).
            foreach (string extra in new[] { "-Activate", string.Empty })
            {
                PwshResult r = Pwsh.Run($"New-BtrfsSwapfile $p 32MB {extra} -Confirm:$false", ("p", Path.Combine(link, "swapfile")));
                var error = Assert.Single(r.Errors);
                Assert.StartsWith("PathIsSymbolicLink,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Contains($"'{link}' is a symbolic link that belongs to user 65534", error.Exception.Message, StringComparison.Ordinal);
                Assert.Empty(Directory.EnumerateFileSystemEntries(target));
                Assert.DoesNotContain(File.ReadLines("/proc/swaps"), l => l.Contains(dir, StringComparison.Ordinal));
            }
        }

        [SkippableFact]
        public void ASwapfileMadeByAnotherUserThanRootIsMadeAndSaidNotToBeReady()
        {
            // Made as asked, but it belongs to that user, and Test-BtrfsSwapfile (and swapon's warning) say it is not ready:
            // before, only the object's Reason said so, no warning (a hostile test).
            string dir = fs.NewDirectory(TestFs.Btrfs, "users-swapfile");
            Shell.Run("chown", "65534:65534", dir);
            string path = Path.Combine(dir, "swapfile");
            PwshResult r;
            using (Unprivileged.AsNobody())
            {
                r = Pwsh.Run("New-BtrfsSwapfile -LiteralPath $p -Size 1MB -Confirm:$false", ("p", path));
            }

            Assert.Empty(r.Errors);
            SwapfileStatus made = Assert.Single(r.Objects<SwapfileStatus>());
            Assert.False(made.IsValid);
            string warning = Assert.Single(r.Warnings).Message;
            Assert.Contains("was created, but swapon should not take it as it is", warning, StringComparison.Ordinal);
            Assert.Contains("uid 65534", warning, StringComparison.Ordinal);
            Assert.Equal("65534 600", Shell.Run("stat", "-c", "%u %a", path).Trim());
        }

        [SkippableFact]
        public void ActivatingInADirectoryAnotherUserCanChangeIsRefusedBeforeAnythingIsMade()
        {
            // Before: root's New-BtrfsSwapfile -Activate in a directory of nobody's made the file, and swapon then
            // opened the name again: nobody renamed a readable swapfile of theirs over it in between, and the
            // system swapped to it (a hostile review did it on the first try). Without -Activate nothing opens it
            // by name afterwards: that stays allowed.
            string dir = fs.NewDirectory(TestFs.Btrfs, "activate-theirs");
            Shell.Run("chown", "65534:65534", dir);
            string path = Path.Combine(dir, "swapfile");
            try
            {
                foreach (string extra in new[] { "-Confirm:$false", "-WhatIf" })
                {
                    PwshResult r = Pwsh.Run($"New-BtrfsSwapfile $p 32MB -Activate {extra}", ("p", path));
                    var error = Assert.Single(r.Errors);
                    Assert.StartsWith("UnsafeDirectory,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
                    Assert.Contains("belongs to user 65534", error.Exception.Message, StringComparison.Ordinal);
                    Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
                    Assert.DoesNotContain(File.ReadLines("/proc/swaps"), l => l.StartsWith(path, StringComparison.Ordinal));
                }

                Assert.Empty(Pwsh.Run("New-BtrfsSwapfile $p 32MB -Confirm:$false", ("p", path)).Errors);
                Assert.True(File.Exists(path));
            }
            finally
            {
                Shell.Try("swapoff", path);
            }
        }

        [SkippableFact]
        public void WithoutRootActivatingIsRefusedBeforeAnExistingSwapfileIsReplaced()
        {
            // Before: nobody's New-BtrfsSwapfile -Activate -Force replaced their existing swapfile (a new inode and
            // swap UUID, which an fstab UUID= entry no longer finds), then failed: swapon needs root. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "activate-unprivileged");
            Shell.Run("chown", "65534:65534", dir);
            Shell.Run("chmod", "0700", dir);
            string path = Path.Combine(dir, "swapfile");
            PwshResult made, again;
            FileFacts before;
            using (Unprivileged.Begin())
            {
                made = Pwsh.Run("New-BtrfsSwapfile $p 4MB -Confirm:$false", ("p", path));
                before = FileFacts.Of(path);
                again = Pwsh.Run("New-BtrfsSwapfile $p 4MB -Activate -Force -Confirm:$false", ("p", path));
            }

            Assert.Empty(made.Errors);
            var error = Assert.Single(again.Errors);
            Assert.StartsWith("AccessDenied,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
            Assert.Contains("needs root", error.Exception.Message, StringComparison.Ordinal);
            Assert.Contains("Nothing was created or replaced", error.Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(path));
            Assert.Equal(new[] { "swapfile" }, FileFacts.Listing(dir));
            Assert.DoesNotContain(File.ReadLines("/proc/swaps"), l => l.StartsWith(path, StringComparison.Ordinal));
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Ext4)]
        public void ASwapfileSwitchedOnThroughAMountThatIsGoneIsActive(TestFs kind)
        {
            // Before: /proc/swaps names it by its path below that mount ("/<dir>/swapfile"), which leads nowhere now:
            // Test-BtrfsSwapfile said IsActive False and "valid: swapon accepts it" (a second swapon fails, EBUSY).
            // Found by a hostile review; on ext4 (no FIDEDUPERANGE to ask) by another: a write of no bytes asks there.
            string dir = fs.NewDirectory(kind, "swap-gone-view");
            string d = Directory.CreateDirectory(Path.Combine(dir, $"btrfs-module-tests-decoy-{Environment.ProcessId}")).FullName;
            string view = fs.NewDirectory(kind, "swap-gone-view-mount");
            Shell.Run("mount", "--bind", dir, view);
            string path = Path.Combine(d, "swapfile");
            try
            {
                _ = new ActiveSwapfile(Path.Combine(view, Path.GetFileName(d)));
                Shell.Run("umount", "-l", view);
                Assert.Contains($"\n/{Path.GetFileName(d)}/swapfile ", "\n" + File.ReadAllText("/proc/swaps"), StringComparison.Ordinal);
                SwapfileStatus status = Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path)).Objects<SwapfileStatus>());
                Assert.True(status.IsActive);
                Assert.DoesNotContain("swapon accepts it", status.ReasonText, StringComparison.Ordinal);

                // Replacing or rewriting it is refused as what it is (before: FileInUse, "a process that had it open
                // only for a moment": only the listed path was compared. A hostile test), and nothing changes.
                FileFacts before = FileFacts.Of(path);
                PwshResult r = Pwsh.Run(
                    "New-BtrfsSwapfile -LiteralPath $p -Size 8MB -Force -AssumeNotInUse -Confirm:$false" + (kind == TestFs.Btrfs ? "; ConvertFrom-NoCow -LiteralPath $p -Confirm:$false" : string.Empty),
                    ("p", path));
                Assert.Equal(Enumerable.Repeat("FileIsActiveSwapfile", kind == TestFs.Btrfs ? 2 : 1), r.ErrorIds);
                Assert.All(r.Errors, e => Assert.Contains("it is an active swapfile", e.Exception.Message, StringComparison.Ordinal));
                Assert.Equal(before, FileFacts.Of(path));
            }
            finally
            {
                Shell.Try("swapoff", path);
                Shell.Try("umount", view);
            }

            string times = Shell.Run("stat", "-c", "%y %z", path);
            Assert.False(Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path)).Objects<SwapfileStatus>()).IsActive);
            Assert.Equal(times, Shell.Run("stat", "-c", "%y %z", path)); // asking wrote nothing
            File.Delete(path); // the shared test filesystem's space
        }

        [SkippableFact]
        public void AFileThatMerelyHasTheStalePathOfASwapfileIsNotActive()
        {
            // Before: /proc/swaps's path of a swapfile switched on through a mount that is gone ("/<dir>/swapfile") led,
            // through another mount, to a file never switched on, and Test-BtrfsSwapfile said it was active (a hostile
            // review). Where the kernel answers (btrfs, xfs), its answer counts.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-stale-path");
            string name = $"btrfs-module-tests-decoy-{Environment.ProcessId}";
            string d = Directory.CreateDirectory(Path.Combine(dir, name)).FullName;
            string view = fs.NewDirectory(TestFs.Btrfs, "swap-stale-path-mount");
            string decoyDir = fs.NewDirectory(TestFs.Xfs, "swap-stale-decoy");
            Shell.Run("mount", "--bind", dir, view);
            try
            {
                _ = new ActiveSwapfile(Path.Combine(view, name));
                Shell.Run("umount", "-l", view);
                Directory.CreateDirectory("/" + name);
                Shell.Run("mount", "--bind", decoyDir, "/" + name);
                FileBuilder.Chunks(Path.Combine(decoyDir, "swapfile"), 1, 1 << 20, 1 << 20, fsyncEach: false);
                Assert.Contains($"\n/{name}/swapfile ", "\n" + File.ReadAllText("/proc/swaps"), StringComparison.Ordinal);
                SwapfileStatus decoy = Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", $"/{name}/swapfile")).Objects<SwapfileStatus>());
                Assert.False(decoy.IsActive);
                Assert.True(Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", Path.Combine(d, "swapfile"))).Objects<SwapfileStatus>()).IsActive);
            }
            finally
            {
                Shell.Try("umount", "/" + name);
                Shell.Try("rmdir", "/" + name);
                Shell.Try("swapoff", Path.Combine(d, "swapfile"));
                Shell.Try("umount", view);
                Shell.Try("rm", "-f", Path.Combine(d, "swapfile")); // the shared test filesystem's space
            }
        }

        [SkippableFact]
        public void AHeaderOfFewerPagesThanTheFileIsTakenAndOneOfMoreIsRefusedAsTheKernelDoes()
        {
            // Before: a header of fewer pages (mkswap FILE 32768 on a 64 MiB file) was called invalid, though swapon
            // takes it and uses that many pages. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-header-size");
            string shorter = Manual(dir, "shorter", header: false, size: "16M");
            Shell.Run("mkswap", shorter, "8192");
            SwapfileStatus s = Expect.Swapfile(shorter);
            Assert.True(s.IsValid, s.ReasonText);
            Assert.True(s.SizeMatchesHeader);
            Assert.Contains("uses only the 8.00 MiB its header says of the file's 16.0 MiB", s.ReasonText, StringComparison.Ordinal);
            AssertKernelAgrees(shorter, s);

            string longer = Manual(dir, "longer", size: "16M");
            Shell.Run("truncate", "-s", "8M", longer);
            s = Expect.Swapfile(longer);
            Assert.False(s.IsValid);
            Assert.False(s.SizeMatchesHeader);
            Assert.Contains("refuses a swap area shorter than its header", s.ReasonText, StringComparison.Ordinal);
            AssertKernelAgrees(longer, s);

            // A last page of 0 (empty, as the kernel says) and of 0xFFFFFFFF (16 TiB: before, "0 bytes"; a hostile test).
            foreach ((uint last, string said) in new[] { (0u, "the swap area is empty"), (uint.MaxValue, $"the header says {(uint.MaxValue + 1L) * Environment.SystemPageSize} bytes") })
            {
                string odd = Manual(dir, "last" + last.ToString(System.Globalization.CultureInfo.InvariantCulture), size: "4M");
                using (FileStream f = new(odd, FileMode.Open, FileAccess.Write))
                {
                    f.Position = 1028; // the header's last_page
                    f.Write(BitConverter.GetBytes(last));
                }

                s = Expect.Swapfile(odd);
                Assert.False(s.IsValid);
                Assert.Contains(said, s.ReasonText, StringComparison.Ordinal);
                AssertKernelAgrees(odd, s);
            }
        }

        [SkippableFact]
        public void AMkswapMadeFileFromTheManPageIsValidToo()
        {
            AssertValidAndTaken(Manual(fs.NewDirectory(TestFs.Btrfs, "manual"), "swapfile"));
        }

        [SkippableFact]
        public void EachBrokenRuleIsNamedAndTheKernelAgrees()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "broken");
            (string File, Func<SwapfileStatus, bool> Rule, string Reason)[] cases =
            {
                (Manual(dir, "cow", noCow: false), s => !s.IsNoCow, "not NOCOW"),
                (Manual(dir, "late-c", noCowAfter: true), s => !s.IsNoCow, "silently ignored"),
                (Manual(dir, "holes", allocate: false), s => !s.FullyAllocated, "not fully allocated"),
                (Manual(dir, "no-header", header: false), s => !s.HasSwapSignature, "no swap signature: run mkswap"),
                (OtherPageSize(Manual(dir, "page-64k", header: false)), s => !s.HasSwapSignature, $"a swap signature made for a page size of {OtherPage} bytes, where this system's is {Environment.SystemPageSize}"),
            };
            foreach ((string file, Func<SwapfileStatus, bool> rule, string reason) in cases)
            {
                SwapfileStatus s = Expect.Swapfile(file);
                Assert.False(s.IsValid, file);
                Assert.True(rule(s), file + ": " + s.ReasonText);
                Assert.Contains(reason, s.ReasonText, StringComparison.Ordinal);
                Assert.NotEqual(0, SwapOn(file).ExitCode);
            }

            Assert.False(FileFacts.HasNoCow(Path.Combine(dir, "late-c")));
        }

        [SkippableTheory]
        [InlineData("btrfs")]
        [InlineData("ext4")]
        public void WhatSwaponCannotOpenForWritingIsRefusedAsTheKernelDoes(string kind)
        {
            // swapon opens the file O_RDWR: immutable and append-only files (EPERM), a read-only mount or btrfs
            // subvolume (EROFS) are refused. Before: "valid: swapon accepts it" for each. Found by a hostile review.
            using ExtraFileSystem x = fs.NewFileSystem(kind, "512M");
            foreach ((string attr, string reason) in new[] { ("+i", "immutable (chattr +i)"), ("+a", "append-only (chattr +a)") })
            {
                string f = Manual(x.MountPoint, "swap" + attr[1], noCow: kind == "btrfs", size: "16M");
                AssertRefusedWhile(f, reason, () => Shell.Run("chattr", attr, f), () => Shell.Run("chattr", "-" + attr[1], f));
            }

            if (kind == "ext4")
            {
                // ext4 takes chattr +c and compresses nothing: the file stays valid (a review caught the flags, now read on
                // ext4 too, making it "compressed").
                string c = Manual(x.MountPoint, "swapc", noCow: false, size: "16M");
                Shell.Run("chattr", "+c", c);
                AssertValidAndTaken(c);
            }

            string ok = Manual(x.MountPoint, "swap", noCow: kind == "btrfs", size: "16M");
            AssertRefusedWhile(ok, "on a read-only mount", () => x.Remount(readOnly: true), () => x.Remount(readOnly: false));

            if (kind == "btrfs")
            {
                string sv = Path.Combine(x.MountPoint, "sv");
                Shell.Run("btrfs", "subvolume", "create", sv);
                string inSv = Manual(sv, "swap", size: "16M");
                AssertRefusedWhile(inSv, "in the read-only btrfs snapshot or subvolume 'sv'", () => Shell.Run("btrfs", "property", "set", sv, "ro", "true"), () => Shell.Run("btrfs", "property", "set", sv, "ro", "false"));
            }
        }

        [SkippableFact]
        public void TheHeadersBadPagesAndByteOrderAreReadAsTheKernelReadsThem()
        {
            // A header that lists bad pages is refused for a swapfile (EINVAL, whichever pages: they are for swap
            // partitions); a header of the other byte order is byte-swapped and taken. Before: "valid" for the first two,
            // invalid for the last. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-header");
            void Poke(string f, long at, params byte[] bytes) => Shell.Run("python3", "-c", "import sys\nf=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3])); f.close()", f, at.ToString(System.Globalization.CultureInfo.InvariantCulture), Convert.ToHexString(bytes));

            string bad = Manual(dir, "bad", size: "16M");
            Poke(bad, 1032, 1, 0, 0, 0); // nr_badpages 1, badpages[0] 0
            SwapfileStatus s = Expect.Swapfile(bad);
            Assert.False(s.IsValid);
            Assert.Contains("lists 1 bad page(s), and swapon refuses a swapfile that lists any", s.ReasonText, StringComparison.Ordinal);
            AssertKernelAgrees(bad, s);

            string page5 = Manual(dir, "page5", size: "16M");
            Poke(page5, 1032, 1, 0, 0, 0);
            Poke(page5, 1536, 5, 0, 0, 0); // page 5, inside the area
            SwapfileStatus f = Expect.Swapfile(page5);
            Assert.False(f.IsValid, f.ReasonText);
            AssertKernelAgrees(page5, f);

            string swapped = Manual(dir, "swapped", size: "16M");
            Poke(swapped, 1024, 0, 0, 0, 1, 0, 0, 0x0F, 0xFF); // version 1 and last_page 4095, big-endian
            AssertValidAndTaken(swapped);
        }

        [SkippableFact]
        public void APausedBalanceIsNamedAsWhatStopsSwapon()
        {
            // While a btrfs exclusive operation is under way (a paused balance holds it until resumed or cancelled), the
            // kernel refuses to activate a swapfile (EBUSY): Test-BtrfsSwapfile says so (before: "valid: swapon accepts
            // it", and New-BtrfsSwapfile -Activate pointed to it for the reason). Found by a hostile review.
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "1G");
            for (int i = 0; i < 6; i++)
            {
                FileBuilder.WriteNew(Path.Combine(x.MountPoint, $"fill{i}"), FileBuilder.RandomBytes(64 << 20, 70 + i));
            }

            string swap = Manual(x.MountPoint, "swap", size: "16M");
            BtrfsProgs.Sync(x.MountPoint);
            Shell.Run("btrfs", "balance", "start", "--bg", "--full-balance", x.MountPoint);
            Shell.Try("btrfs", "balance", "pause", x.MountPoint);
            string op = string.Empty;
            try
            {
                op = File.ReadAllText(Directory.GetDirectories("/sys/fs/btrfs").Select(d => Path.Combine(d, "exclusive_operation")).First(p => File.Exists(p) && Shell.Run("btrfs", "filesystem", "show", x.MountPoint).Contains(Path.GetFileName(Path.GetDirectoryName(p)!)!, StringComparison.Ordinal))).Trim();
                Assert.Equal("balance paused", op); // the balance of 384 MiB did not end before the pause
                SwapfileStatus s = Expect.Swapfile(swap);
                Assert.False(s.IsValid);
                Assert.Contains("btrfs exclusive operation (balance paused", s.ReasonText, StringComparison.Ordinal);
                AssertKernelAgrees(swap, s);
            }
            finally
            {
                Shell.Try("btrfs", "balance", "cancel", x.MountPoint);
            }

            AssertValidAndTaken(swap);
        }

        [SkippableFact]
        public void ASizeTheHeaderCannotCountIsRefusedFirstAndAHardLinkIsToldOnce()
        {
            // Above 2^32 - 1 pages: an OverflowException after the whole size was preallocated (before). Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-huge");
            string huge = Path.Combine(dir, "huge");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 17TB -Confirm:$false; 'next'", ("p", huge));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("InvalidArgument", e.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Contains("header counts pages in 32 bits", e.Exception.Message, StringComparison.Ordinal);
            Assert.Equal(huge, e.TargetObject);
            Assert.Equal("next", Assert.Single(r.Output).BaseObject);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));

            // -Force over a file with another name: the notice once (before: twice, the check ran twice).
            string h1 = Path.Combine(dir, "h1");
            File.WriteAllText(h1, "d\n");
            Shell.Run("ln", h1, Path.Combine(dir, "h2"));

            // -WhatIf says that a file of data is replaced (before: "Create a 1.00 MiB swapfile", as if nothing were there. A hostile test).
            FileFacts before = FileFacts.Of(h1);
            PwshResult preview = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Force -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = h1 }, captureHost: true);
            Assert.Contains("replacing the existing file there (2 B long", preview.HostText, StringComparison.Ordinal);
            Assert.Contains("its 1 other hard link(s) keep it", preview.HostText, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(h1));

            // A directory this user may not write in: said by -WhatIf too (before: "What if: Create", then EACCES. A hostile test).
            using (FsUid.Become(FsUid.Nobody))
            {
                preview = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["p"] = Path.Combine(dir, "mine") }, captureHost: true);
            }

            Assert.Equal("AccessDenied", Assert.Single(preview.ErrorIds));
            Assert.Contains("may not write in the directory", preview.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("What if", preview.HostText, StringComparison.Ordinal);
            PwshResult f = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 1MB -Force -Confirm:$false", ("p", h1));
            Assert.Empty(f.Errors);
            Assert.Contains("has 2 hard links", Assert.Single(f.Warnings).Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ModeIsAboutSafetyAndSwaponWarnsAboutItToo()
        {
            string path = Manual(fs.NewDirectory(TestFs.Btrfs, "mode"), "swapfile", mode: "0644");
            SwapfileStatus s = Expect.Swapfile(path);
            Assert.False(s.IsValid);
            Assert.False(s.Permissions0600);
            Assert.Contains("mode 0644", s.ReasonText, StringComparison.Ordinal);
            Assert.True(s.OwnedByRoot);
            Shell.Result k = SwapOn(path);
            Assert.Equal(0, k.ExitCode); // the kernel takes it...
            Assert.Contains("insecure permissions", k.StdErr, StringComparison.Ordinal); // ...and swapon(8) warns, as Test-BtrfsSwapfile does

            // Mode 0600, but another user's: that user reads root's swapped-out memory (before: valid, a hostile review).
            Shell.Run("chmod", "0600", path);
            Shell.Run("chown", "nobody", path);
            SwapfileStatus owned = Expect.Swapfile(path);
            Assert.Equal((false, true, false), (owned.IsValid, owned.Permissions0600, owned.OwnedByRoot));
            Assert.Contains("owned by uid 65534", owned.ReasonText, StringComparison.Ordinal);
            Shell.Result byNobody = SwapOn(path);
            Assert.Equal(0, byNobody.ExitCode);
            Assert.Contains("insecure file owner", byNobody.StdErr, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ReflinkedAndSnapshottedSwapfilesAreSharedAndRefused()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "shared");
            string nocow = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
            Shell.Run("chattr", "+C", nocow);
            string swap = Manual(nocow, "swapfile");
            Shell.Run("cp", "--reflink=always", swap, Path.Combine(nocow, "copy"));
            SwapfileStatus s = Expect.Swapfile(swap);
            Assert.True(s.IsShared);
            Assert.Contains("shares extents with a reflink copy or snapshot", s.ReasonText, StringComparison.Ordinal);
            AssertKernelAgrees(swap, s);

            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            string inSv = Manual(sv, "swapfile");
            Shell.Run("btrfs", "subvolume", "snapshot", sv, Path.Combine(dir, "snap"));
            SwapfileStatus t = Expect.Swapfile(inSv);
            Assert.True(t.IsShared);
            AssertKernelAgrees(inSv, t);
        }

        [SkippableFact]
        public void ACompressedFileIsNamedAndACompressForceMountStillTakesANoCowSwapfile()
        {
            string dir = fs.NewDirectory(TestFs.BtrfsZstd, "compress");
            string c = Path.Combine(dir, "compressed");
            Shell.Run("truncate", "-s", "0", c);
            Shell.Run("chattr", "+c", c);
            Shell.Run("fallocate", "-l", "32M", c);
            Shell.Run("chmod", "0600", c);
            Shell.Run("mkswap", c);
            SwapfileStatus s = Expect.Swapfile(c);
            Assert.True(s.IsCompressed);
            Assert.Equal("compress=zstd:3", s.MountCompressOption);
            Assert.Contains("compressed (the +c attribute", s.ReasonText, StringComparison.Ordinal);
            AssertKernelAgrees(c, s);

            // The kernel wins over btrfs(5)'s warning: NOCOW holds even under compress-force.
            using ExtraFileSystem force = fs.NewFileSystem("btrfs", "512M", "compress-force=zstd");
            string path = Path.Combine(force.MountPoint, "swapfile");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile $p 32MB", ("p", path));
            Assert.Empty(r.Errors);
            SwapfileStatus n = Assert.Single(r.Objects<SwapfileStatus>());
            Assert.True(n.IsValid, n.ReasonText);
            Assert.Equal("compress-force=zstd:3", n.MountCompressOption);
            AssertKernelAgrees(path, n);
        }

        [SkippableTheory]
        [InlineData("single")]
        [InlineData("raid1")]
        public void TwoDeviceFilesystemsAreRefusedForNewSwapfilesAndJudgedByWhereTheExtentsLie(string profile)
        {
            using ExtraFileSystem two = fs.NewTwoDeviceBtrfs("1G", profile);
            string path = Path.Combine(two.MountPoint, "new");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile $p 64MB", ("p", path));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("OperationNotSupported", e.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Contains("2 devices", e.Exception.Message, StringComparison.Ordinal);
            Assert.Empty(FileFacts.Listing(two.MountPoint));

            string manual = Manual(two.MountPoint, "manual");
            SwapfileStatus s = Expect.Swapfile(manual);
            if (profile == "raid1")
            {
                Assert.False(s.SingleDataProfile);
                Assert.Contains("not in the single profile", s.ReasonText, StringComparison.Ordinal);
            }

            AssertKernelAgrees(manual, s); // whichever way the extents fell, the verdict is the kernel's
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Xfs)]
        [InlineData((int)TestFs.Ext4)]
        public void XfsAndExt4SwapfilesAreMadeAndJudgedByTheirRules(int which)
        {
            string dir = fs.NewDirectory((TestFs)which, "swap");
            string path = Path.Combine(dir, "swapfile");
            SwapfileStatus s = Assert.Single(Pwsh.Run("New-BtrfsSwapfile $p 32MB", ("p", path)).Objects<SwapfileStatus>());
            Assert.True(s.IsValid, s.ReasonText);
            AssertKernelAgrees(path, s);
            string holes = Manual(dir, "holes", noCow: false, allocate: false);
            SwapfileStatus h = Expect.Swapfile(holes);
            Assert.False(h.FullyAllocated);
            AssertKernelAgrees(holes, h);
        }

        [SkippableFact]
        public void RefusalsLeaveNothingBehindAndAnActiveSwapfileIsNeverReplaced()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "refuse");
            string existing = Path.Combine(dir, "existing");
            FileBuilder.WriteNew(existing, new byte[] { 1, 2, 3 });
            FileFacts before = FileFacts.Of(existing);
            Assert.Equal("DestinationExists", Assert.Single(Pwsh.Run("New-BtrfsSwapfile $p 32MB", ("p", existing)).ErrorIds));
            Assert.Equal(before, FileFacts.Of(existing));

            // A directory is named as one, with or without -Force (before: "add -Force", then "a directory"; a newcomer review).
            foreach (string force in new[] { string.Empty, " -Force -Confirm:$false" })
            {
                ErrorRecord e = Assert.Single(Pwsh.Run("New-BtrfsSwapfile $p 32MB" + force, ("p", dir)).Errors);
                Assert.StartsWith("NotRegularFile,", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Contains("is a directory", e.Exception.Message, StringComparison.Ordinal);
                Assert.Contains(Path.Combine(dir, "swapfile"), e.Exception.Message, StringComparison.Ordinal);
            }

            // -Force over a file with another hard link: said, as New-BtrfsReflink -Force says it (a hostile review:
            // replaced without a word); the other name keeps the old data.
            string linked = Path.Combine(dir, "data"), otherName = Path.Combine(dir, "data2");
            FileBuilder.WriteNew(linked, new byte[] { 7, 7, 7 });
            Shell.Run("ln", linked, otherName);
            PwshResult forced = Pwsh.Run("New-BtrfsSwapfile $p 16MB -Force -Confirm:$false", ("p", linked));
            Assert.Empty(forced.Errors);
            Assert.Contains(forced.Warnings, w => w.Message.Contains("has 2 hard links: only this name becomes the swapfile; the other 1 keep the old data", StringComparison.Ordinal));
            Assert.Equal(new byte[] { 7, 7, 7 }, File.ReadAllBytes(otherName));

            string tmp = Path.Combine(fs.NewDirectory(TestFs.Tmpfs, "swap"), "swapfile");
            Assert.Equal("OperationNotSupported", Assert.Single(Pwsh.Run("New-BtrfsSwapfile $p 1MB", ("p", tmp)).ErrorIds));
            Assert.False(File.Exists(tmp));

            using ExtraFileSystem small = fs.NewFileSystem("btrfs", "256M");
            string big = Path.Combine(small.MountPoint, "swapfile");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile $p 1GB", ("p", big));
            Assert.Equal("InsufficientSpace", Assert.Single(r.ErrorIds));
            Assert.Empty(FileFacts.Listing(small.MountPoint));

            // Room by statfs, but not for the allocation with its metadata (xfs): said as a new file's, not as a
            // copy's "the original is unchanged" (a hostile review).
            using ExtraFileSystem tight = fs.NewFileSystem("xfs", "300M");
            long room = new DriveInfo(tight.MountPoint).AvailableFreeSpace / 4096 * 4096;
            r = Pwsh.Run($"New-BtrfsSwapfile $p {room} -Confirm:$false", ("p", Path.Combine(tight.MountPoint, "swapfile")));
            Assert.Equal("InsufficientSpace", Assert.Single(r.ErrorIds));
            Assert.Contains("Nothing was created", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("original", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Empty(FileFacts.Listing(tight.MountPoint));

            using var active = new ActiveSwapfile(fs.NewDirectory(TestFs.Btrfs, "active"));
            FileFacts act = FileFacts.Of(active.Path);
            foreach (string script in new[]
            {
                "New-BtrfsSwapfile $p 64MB -Force",
                "Invoke-BtrfsDedupe $p $p2",
            })
            {
                string other = active.Path + ".twin";
                if (!File.Exists(other))
                {
                    Shell.Run("cp", "--reflink=never", active.Path, other);
                }

                PwshResult x = Pwsh.Run(script, ("p", active.Path), ("p2", other));
                ErrorRecord e = Assert.Single(x.Errors);
                Assert.Equal("FileIsActiveSwapfile", e.FullyQualifiedErrorId.Split(',')[0]);
                Assert.Contains("swapoff", e.Exception.Message, StringComparison.Ordinal);
                Assert.Equal(act, FileFacts.Of(active.Path));
            }

            PwshResult d = Pwsh.Run("Invoke-BtrfsDefrag $p", ("p", active.Path));
            Assert.Contains("swapfile", Assert.Single(d.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(act, FileFacts.Of(active.Path));
        }

        [SkippableTheory]
        [InlineData(TestFs.Btrfs)]
        [InlineData(TestFs.Xfs)]
        [InlineData(TestFs.Ext4)]
        public void TheResumeOffsetForHibernationIsWhereTheKernelFindsTheFirstPage(TestFs kind)
        {
            string path = Path.Combine(fs.NewDirectory(kind, "resume"), "swap.img");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 16MB", ("p", path));
            Assert.Empty(r.Errors);
            SwapfileStatus created = Assert.Single(r.Objects<SwapfileStatus>());
            SwapfileStatus tested = Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path)).Objects<SwapfileStatus>());
            Assert.NotNull(created.ResumeOffset);
            Assert.Equal(created.ResumeOffset, tested.ResumeOffset);

            // btrfs: as btrfs-progs computes it (the first extent's logical address through the chunk map);
            // xfs and ext4: FIEMAP's physical offset is the device's, in pages.
            long expected = kind == TestFs.Btrfs
                ? long.Parse(Shell.Run("btrfs", "inspect-internal", "map-swapfile", "-r", path).Trim(), System.Globalization.CultureInfo.InvariantCulture)
                : Filefrag.Extents(path).First(e => e.Logical == 0).Physical / Environment.SystemPageSize;
            Assert.Equal(expected, created.ResumeOffset);

            // A layout that can still move has none, as map-swapfile refuses (before: an offset for a copy-on-write file
            // with holes; a hostile review): here a hole after its first MiB, and copy on write on btrfs.
            string holey = Path.Combine(Path.GetDirectoryName(path)!, "holey.img");
            Shell.Run("truncate", "-s", "16M", holey);
            Shell.Run("chmod", "600", holey);
            Shell.Run("xfs_io", "-c", "pwrite 0 1M", "-c", "pwrite 4M 1M", "-c", "fsync", holey);
            Shell.Run("mkswap", holey);
            Shell.Run("sync");
            Assert.Contains(Filefrag.Extents(holey), e => e.Logical == 0);
            SwapfileStatus moving = Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", holey)).Objects<SwapfileStatus>());
            Assert.Equal((false, false, (long?)null), (moving.IsValid, moving.FullyAllocated, moving.ResumeOffset));
            File.Delete(holey);

            // Not root on btrfs: the chunk map is out of reach, so no figure rather than a wrong one.
            if (kind == TestFs.Btrfs)
            {
                Shell.Run("chown", "nobody", path);
                using (Unprivileged.Begin())
                {
                    Assert.Null(Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path)).Objects<SwapfileStatus>()).ResumeOffset);
                }
            }
        }

        [SkippableFact]
        public void OnBlocksSmallerThanAPageAFirstBlockOffAPageBoundaryHasNoResumeOffsetAndSaysWhy()
        {
            // ext4 with 1 KiB blocks: its data starts 1 KiB past a page boundary, so the swapfile's first block is
            // off one. swapon takes it (it skips the partial page), but resuming reads the header from a whole page
            // of the device: no offset, and the reason says so (before: none and not a word why).
            using ExtraFileSystem small = fs.NewFileSystem("ext4-1k", "128M");
            string path = Path.Combine(small.MountPoint, "swap.img");
            PwshResult r = Pwsh.Run("New-BtrfsSwapfile -Path $p -Size 16MB", ("p", path));
            Assert.Empty(r.Errors);
            SwapfileStatus created = Assert.Single(r.Objects<SwapfileStatus>());
            long first = Filefrag.Extents(path).First(e => e.Logical == 0).Physical;
            Assert.NotEqual(0, first % Environment.SystemPageSize); // the case under test (a fresh ext4 -b 1024)
            Assert.True(created.IsValid);
            Assert.Null(created.ResumeOffset);
            string reason = Assert.Single(created.Reason);
            Assert.StartsWith("valid: swapon accepts it; no resume offset for hibernation", reason, StringComparison.Ordinal);
            Assert.Contains($"at byte {first} of the device, not on a page boundary", reason, StringComparison.Ordinal);
            SwapfileStatus tested = Assert.Single(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $p -Detailed", ("p", path)).Objects<SwapfileStatus>());
            Assert.Equal((true, (long?)null, reason), (tested.IsValid, tested.ResumeOffset, Assert.Single(tested.Reason)));
        }

        [SkippableFact]
        public void LookingAtAFileOnAFrozenFilesystemDoesNotWaitForTheThaw()
        {
            // Before: Test-BtrfsSwapfile asked the kernel with FIDEDUPERANGE, which waits for write access: on a frozen
            // filesystem it waited, unkillably, until the thaw (637 s in the review). Now the kernel is asked only where
            // a listed swapfile's path leads nowhere and could be this file (and waited for at most 2 s): not here,
            // with none listed or another one listed where it is. Found by a hostile review.
            using ExtraFileSystem frozen = fs.NewFileSystem("btrfs", "256M");
            using ExtraFileSystem other = fs.NewFileSystem("btrfs", "256M");
            string file = Path.Combine(frozen.MountPoint, "swapfile");
            Shell.Run("truncate", "-s", "0", file);
            Shell.Run("chattr", "+C", file);
            Shell.Run("fallocate", "-l", "32M", file);
            Shell.Run("chmod", "0600", file);
            Shell.Run("mkswap", file);
            Shell.Run("sync");
            foreach (bool anotherActive in new[] { false, true })
            {
                using ActiveSwapfile? swap = anotherActive ? new ActiveSwapfile(other.MountPoint) : null;
                Shell.Run("fsfreeze", "-f", frozen.MountPoint);
                System.Threading.Tasks.Task<RealPwsh.Result> run;
                bool answered;
                try
                {
                    // pwsh as a runbook runs it: a look-up left waiting in the kernel would also hold the process's exit.
                    run = System.Threading.Tasks.Task.Run(() => RealPwsh.Run("'@@' + (Test-BtrfsSwapfile -LiteralPath $f -Detailed).IsActive + ' ' + $Error.Count", null, ("f", file)));
                    answered = run.Wait(TimeSpan.FromSeconds(30));
                }
                finally
                {
                    Shell.Run("fsfreeze", "-u", frozen.MountPoint); // a look-up still waiting goes on now
                }

                Assert.True(answered, $"pwsh did not answer and end in 30 s while frozen (another swapfile active: {anotherActive})");
                RealPwsh.Result r = run.Result;
                Assert.Equal(new[] { "False 0" }, r.Marked);
            }
        }
    }
}
