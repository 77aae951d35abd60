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

    /// <summary>New-BtrfsReflink on real btrfs and xfs: shared extents, the NOCOW rule, ranges, trees, and every refusal leaving nothing behind.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ReflinkTests(LoopFileSystems fs)
    {
        private static PwshResult Clone(string script, params (string, object?)[] vars) => Pwsh.Run(script, vars);

        private static long FreeBytes(string dir) => new DriveInfo(dir).AvailableFreeSpace;

        private static (long Total, long Exclusive, long SetShared) Du(string dir)
        {
            string last = Shell.Run("btrfs", "filesystem", "du", "-s", "--raw", dir).Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
            string[] f = last.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return (long.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture));
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Btrfs)]
        [InlineData((int)TestFs.Xfs)]
        public void AWholeFileReflinkSharesEveryExtentAndUsesNoSpace(int which)
        {
            string dir = fs.NewDirectory((TestFs)which, "whole");
            string src = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(src, 32, 1 << 20, 1 << 20, fsyncEach: false);
            Shell.Run("sync");
            string dst = Path.Combine(dir, "vm-backup.img");
            long freeBefore = FreeBytes(dir);

            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d | Get-BtrfsExtent", ("s", src), ("d", dst));
            Assert.Empty(r.Errors);
            Assert.All(r.Objects<FileExtent>(), x => Assert.True(x.IsShared)); // the result's Path piped on
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));
            Assert.All(Filefrag.Extents(src), e => Assert.Contains("shared", e.Flags));
            Assert.All(Filefrag.Extents(dst), e => Assert.Contains("shared", e.Flags));
            Shell.Run("sync");
            Assert.True(freeBefore - FreeBytes(dir) < 2 << 20, $"free space dropped by {freeBefore - FreeBytes(dir)} bytes");
            if ((TestFs)which == TestFs.Btrfs)
            {
                (long total, long exclusive, long shared) = Du(dir);
                Assert.Equal(64L << 20, total);
                Assert.Equal(0, exclusive);
                Assert.Equal(32L << 20, shared);
            }

            ReflinkResult res = Assert.Single(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Force", ("s", src), ("d", dst)).Objects<ReflinkResult>());
            Assert.Equal((dst, src, 32L << 20, 32L << 20, ReflinkMethod.Reflink), (res.Path, res.Source, res.Length, res.SharedBytes, res.Method));
        }

        [SkippableTheory]
        [InlineData((int)TestFs.Btrfs)]
        [InlineData((int)TestFs.Xfs)]
        public void AReplacedDestinationKeepsItsOwnerModeAndAclAndItsOtherHardLinksAreNamed(int which)
        {
            string dir = fs.NewDirectory((TestFs)which, "keeps");
            string priv = Directory.CreateDirectory(Path.Combine(dir, "priv")).FullName;
            Shell.Run("chmod", "0700", priv);
            string src = Path.Combine(priv, "secret.img");
            FileBuilder.Chunks(src, 2, 65536, 65536, seed: 5);
            Shell.Run("chmod", "0644", src);
            string pub = Directory.CreateDirectory(Path.Combine(dir, "pub")).FullName;
            Shell.Run("chmod", "0777", pub);
            string dst = Path.Combine(pub, "out.img");
            FileBuilder.Chunks(dst, 1, 4096, 4096, seed: 6);
            Shell.Run("chown", "65534:65534", dst);
            Shell.Run("chmod", "0600", dst);
            Shell.Run("setfacl", "-m", "u:daemon:r", dst);
            string access = Shell.Run("getfacl", "-cp", dst);
            Assert.Equal("65534 65534 640", Shell.Run("stat", "-c", "%u %g %a", dst).Trim()); // the ACL's mask is the group's bits
            string other = Path.Combine(dir, "other-name.img");
            Shell.Run("ln", dst, other);
            string old = FileFacts.Hash(dst);

            // Root replaces nobody's private file: the new one is still nobody's, 0640 with the same ACL
            // (not root's, with the source's 0644: readable by everyone through the public directory).
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Force", ("s", src), ("d", dst));
            Assert.Empty(r.Errors);
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));
            Assert.Equal("65534 65534 640", Shell.Run("stat", "-c", "%u %g %a", dst).Trim());
            Assert.Equal(access, Shell.Run("getfacl", "-cp", dst));
            Assert.Contains("user:daemon:r--", access, StringComparison.Ordinal);
            Assert.Contains("hard links", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(old, FileFacts.Hash(other)); // the other name keeps the old data, as the warning said

            // -Preserve takes the source's owner and mode instead, as cp -a does.
            Assert.Empty(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Force -Preserve", ("s", src), ("d", dst)).Errors);
            Assert.Equal("0 0 644", Shell.Run("stat", "-c", "%u %g %a", dst).Trim());

            // A caller who cannot give the new file the old one's owner (only root can) owns it, as with rsync or mv,
            // keeping its mode without the setuid bit, and is told (without -AssumeNotInUse it stops earlier: only
            // the owner or root gets the lease that proves nobody has it open).
            string theirs = Path.Combine(pub, "theirs.img");
            FileBuilder.Chunks(theirs, 1, 4096, 4096, seed: 7);
            Shell.Run("chmod", "4646", theirs);
            string mine = Path.Combine(pub, "mine.img");
            FileBuilder.Chunks(mine, 2, 65536, 65536, seed: 8);
            Shell.Run("chown", "65534:65534", mine);
            RealPwsh.Result taken = RealPwsh.Run("New-BtrfsReflink -LiteralPath $S -Destination $D -Force -AssumeNotInUse -WarningVariable w -WarningAction SilentlyContinue | Out-Null; $w | ForEach-Object Message", 65534, ("S", mine), ("D", theirs));
            Assert.True(taken.ExitCode == 0 && taken.StdErr.Length == 0, taken.StdOut + taken.StdErr);
            Assert.Contains("belonged to uid 0", taken.StdOut, StringComparison.Ordinal);
            Assert.Contains("without setuid and setgid bits", taken.StdOut, StringComparison.Ordinal);
            Assert.Equal("65534 646", Shell.Run("stat", "-c", "%u %a", theirs).Trim());
            Assert.Equal(FileFacts.Hash(mine), FileFacts.Hash(theirs));
            Assert.Equal(new[] { "mine.img", "out.img", "theirs.img" }, FileFacts.Listing(pub));
        }

        /// <summary>
        /// Before: the destination's way was checked by its path, then opened by its path again: another user's directory
        /// on the way exchanged with that user's link in between led 7 of 29 copies into the directory the link named
        /// (a hostile review). Now each destination directory is reached one name at a time from descriptors, each link
        /// checked as it is followed: however the names turn, nothing lands in the link's directory.
        /// </summary>
        [SkippableFact]
        public void AnotherUsersLinkSwappedInOnTheWayMidRunNeverLeadsTheCopies()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "dest-link-race");
            string nob = Directory.CreateDirectory(Path.Combine(dir, "nob")).FullName;
            string secret = Directory.CreateDirectory(Path.Combine(dir, "secret")).FullName;
            string tree = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
            Directory.CreateDirectory(Path.Combine(nob, "real"));
            string src = Path.Combine(dir, "src.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(16 << 10, 3));
            FileBuilder.WriteNew(Path.Combine(tree, "t.img"), FileBuilder.RandomBytes(16 << 10, 4));
            File.CreateSymbolicLink(Path.Combine(nob, "L"), secret);
            Shell.Run("chown", "-R", "-h", "65534:65534", nob);
            string rootLink = Path.Combine(dir, "rootlink");
            File.CreateSymbolicLink(rootLink, Path.Combine(nob, "real")); // root's own link: followed

            int copied = 0, refused = 0;
            using (NameExchanger x = NameExchanger.Start(nob, "real", nob, "L"))
            {
                for (int i = 0; i < 15; i++)
                {
                    PwshResult r = Pwsh.Run(
                        "New-BtrfsReflink -LiteralPath $s -Destination ($d + '/f' + $i); New-BtrfsReflink -LiteralPath $t -Destination ($d + '/t' + $i) -Recurse",
                        ("s", src), ("t", tree), ("d", rootLink), ("i", i));
                    Assert.All(r.ErrorIds, id => Assert.Contains(id, new[] { "PathIsSymbolicLink", "PathNotFound", "FileChangedSinceListed" }));
                    refused += r.Errors.Count;
                    copied += 2 - r.Errors.Count;
                    Assert.Empty(Directory.GetFileSystemEntries(secret));
                }

                Assert.True(x.Exchanges > 0);
            }

            Assert.True(copied > 0 && refused > 0, $"{copied} copied, {refused} refused");
            Assert.Empty(Directory.GetFileSystemEntries(secret));
        }

        /// <summary>
        /// Before: root followed a link another user owns in the destination's path into root's own private directory
        /// (a file copied there, -Force replacing files there, a tree mirrored there). Now a link on the way that belongs
        /// to neither the caller nor root is refused before anything is made; the caller's own link is followed.
        /// </summary>
        [SkippableFact]
        public void ADestinationThroughAnotherUsersLinkIsRefusedAndTheCallersOwnLinkIsFollowed()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "dest-link");
            string theirs = Directory.CreateDirectory(Path.Combine(dir, "theirs")).FullName;
            string secret = Directory.CreateDirectory(Path.Combine(dir, "secret")).FullName;
            string tree = Directory.CreateDirectory(Path.Combine(dir, "tree")).FullName;
            string src = Path.Combine(dir, "src.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(64 << 10, 3));
            FileBuilder.WriteNew(Path.Combine(tree, "t.img"), FileBuilder.RandomBytes(64 << 10, 4));
            FileBuilder.WriteNew(Path.Combine(secret, "kept.img"), FileBuilder.RandomBytes(4096, 5));
            Shell.Run("chmod", "700", secret);
            Shell.Run("chown", "65534:65534", theirs);
            string link = Path.Combine(theirs, "out");
            File.CreateSymbolicLink(link, secret);
            Shell.Run("chown", "-h", "65534:65534", link);
            string before = FileFacts.Stamp(Path.Combine(secret, "kept.img"));

            foreach (string script in new[]
            {
                "New-BtrfsReflink -LiteralPath $s -Destination $d",
                "New-BtrfsReflink -LiteralPath $s -Destination ($d + '/') -Force",
                "New-BtrfsReflink -LiteralPath $s -Destination ($d + '/kept.img') -Force",
                "New-BtrfsReflink -LiteralPath $t -Destination $d -Recurse",
            })
            {
                PwshResult r = Pwsh.Run(script, ("s", src), ("d", link), ("t", tree));
                Assert.Equal("PathIsSymbolicLink", Assert.Single(r.ErrorIds));
                Assert.Contains($"'{link}' is a symbolic link that belongs to user 65534", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Equal(new[] { "kept.img" }, Directory.GetFileSystemEntries(secret).Select(Path.GetFileName));
                Assert.Equal(before, FileFacts.Stamp(Path.Combine(secret, "kept.img")));
            }

            // The caller's own link (root's) is followed, as before.
            string mine = Path.Combine(dir, "mine");
            File.CreateSymbolicLink(mine, secret);
            PwshResult ok = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d", ("s", src), ("d", mine));
            Assert.Empty(ok.Errors);
            Assert.True(File.Exists(Path.Combine(secret, "src.img")));
        }

        [SkippableFact]
        public void ASourceThroughAnotherUsersLinkIsRefusedAndTheCallersOwnLinkIsFollowed()
        {
            // Before: another user's link given as the source was followed, so root copying "their" file into one that
            // user owns (-Force keeps the replaced file's owner and mode) gave them a file only root could read. The
            // destination was refused so already. Found by a hostile test.
            string dir = fs.NewDirectory(TestFs.Btrfs, "source-link");
            string secret = Directory.CreateDirectory(Path.Combine(dir, "secret")).FullName;
            string shared = Directory.CreateDirectory(Path.Combine(dir, "shared")).FullName;
            string hidden = Path.Combine(secret, "hidden.img");
            FileBuilder.WriteNew(hidden, FileBuilder.RandomBytes(64 << 10, 6));
            Shell.Run("chmod", "700", secret);
            Shell.Run("chmod", "600", hidden);
            Shell.Run("chmod", "1777", shared);
            string bak = Path.Combine(shared, "notes.bak");
            FileBuilder.WriteNew(bak, FileBuilder.RandomBytes(100, 7));
            Shell.Run("chown", "65534:65534", bak);
            string link = Path.Combine(shared, "notes.new"), linkedDir = Path.Combine(shared, "dir");
            File.CreateSymbolicLink(link, hidden);
            File.CreateSymbolicLink(linkedDir, secret);
            Shell.Run("chown", "-h", "65534:65534", link, linkedDir);
            FileFacts before = FileFacts.Of(bak);

            foreach ((string source, string at) in new[] { (link, link), (Path.Combine(linkedDir, "hidden.img"), linkedDir) })
            {
                PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Force -Confirm:$false", ("s", source), ("d", bak));
                Assert.Equal("PathIsSymbolicLink", Assert.Single(r.ErrorIds));
                Assert.Contains($"'{at}' is a symbolic link that belongs to user 65534", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Contains("Nothing was copied", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Equal(source, r.Errors[0].TargetObject);
                Assert.Equal(before, FileFacts.Of(bak));
            }

            // A tree below such a link, with -Recurse, too (a review: only a single file was checked).
            Directory.CreateDirectory(Path.Combine(secret, "tree"));
            FileBuilder.WriteNew(Path.Combine(secret, "tree", "t.img"), FileBuilder.RandomBytes(4096, 8));
            string mirror = Path.Combine(shared, "mirror");
            PwshResult tree = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Confirm:$false", ("s", Path.Combine(linkedDir, "tree")), ("d", mirror));
            Assert.Equal("PathIsSymbolicLink", Assert.Single(tree.ErrorIds));
            Assert.Contains($"'{linkedDir}' is a symbolic link that belongs to user 65534", tree.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.False(Directory.Exists(mirror));
            Assert.Equal(new[] { "dir", "notes.bak", "notes.new" }, FileFacts.Listing(shared));

            // One of the caller's own whose target goes through '..' after another link is followed as the kernel follows it,
            // never by its text (a hostile test: "sub/../../x" was taken as "../x", another file than the kernel's; it was
            // then refused; now each name is walked from descriptors, '..' going up from where the walk really is).
            string deep = Directory.CreateDirectory(Path.Combine(dir, "d1", "deep", "deeper")).FullName;
            File.CreateSymbolicLink(Path.Combine(dir, "d1", "sub"), "deep/deeper");
            File.CreateSymbolicLink(Path.Combine(dir, "d1", "through"), "sub/../../mine.img");
            FileBuilder.WriteNew(Path.Combine(dir, "d1", "mine.img"), FileBuilder.RandomBytes(8192, 9)); // the kernel's d1/deep/deeper/../../mine.img
            PwshResult dots = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d", ("s", Path.Combine(dir, "d1", "through")), ("d", Path.Combine(dir, "dots.img")));
            Assert.Empty(dots.Errors);
            Assert.Equal(FileFacts.Hash(Path.Combine(dir, "d1", "mine.img")), FileFacts.Hash(Path.Combine(dir, "dots.img")));
            Assert.Equal(FileFacts.Hash(Path.Combine(dir, "d1", "through")), FileFacts.Hash(Path.Combine(dir, "dots.img")));

            // The same as an absolute target (a review: an absolute one was still collapsed by its text, to 'dir/mine.img').
            File.CreateSymbolicLink(Path.Combine(dir, "d1", "absolute"), Path.Combine(dir, "d1") + "/sub/../../mine.img");
            PwshResult abs = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d", ("s", Path.Combine(dir, "d1", "absolute")), ("d", Path.Combine(dir, "dots2.img")));
            Assert.Empty(abs.Errors);
            Assert.Equal(FileFacts.Hash(Path.Combine(dir, "d1", "absolute")), FileFacts.Hash(Path.Combine(dir, "dots2.img")));

            // The caller's own link (root's) is followed, also a relative one, as cp does.
            string mine = Path.Combine(dir, "mine.img");
            File.CreateSymbolicLink(mine, "secret/hidden.img");
            string copy = Path.Combine(dir, "copy.img");
            Assert.Empty(Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d", ("s", mine), ("d", copy)).Errors);
            Assert.Equal(FileFacts.Hash(hidden), FileFacts.Hash(copy));
        }

        [SkippableFact]
        public void ACopyOfASourceWrittenWhileItIsCopiedIsAnErrorAndLeavesNoFile()
        {
            // Before: -Fallback Copy of a source truncated meanwhile succeeded with a file of the old size, its end a
            // hole of zeros the source never held (a hostile test). Now the source's size and times are read again
            // after the copy: changed, an error, and the copy removed (a replaced destination left as it was).
            string src = Path.Combine(fs.NewDirectory(TestFs.Xfs, "copy-written"), "big.img");
            Shell.Run("dd", "if=/dev/urandom", "of=" + src, "bs=4M", "count=32", "status=none");
            string dir = fs.NewDirectory(TestFs.Btrfs, "copy-written");
            string dst = Path.Combine(dir, "d.img"), old = Path.Combine(dir, "old.img");
            FileBuilder.Chunks(old, 1, 4096, 4096, seed: 52);
            string oldHash = FileFacts.Hash(old);
            string inode = Shell.Run("stat", "-c", "%i", old).Trim();
            using (ChildProcess writer = ChildProcess.Start("python3", "-c", "import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY)\nprint('ready',flush=True)\nwhile True:\n os.pwrite(fd,os.urandom(4096),4096)", src))
            {
                foreach (string command in new[] { "New-BtrfsReflink -LiteralPath $s -Destination $d -Fallback Copy", "New-BtrfsReflink -LiteralPath $s -Destination $o -Force -Fallback Copy" })
                {
                    PwshResult r = Clone(command, ("s", src), ("d", dst), ("o", old));
                    Assert.Equal(new[] { "FileChangedDuringCopy" }, r.ErrorIds);
                    Assert.Contains("the source changed while it was copied", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                    Assert.Empty(r.Objects<ReflinkResult>());
                }
            }

            Assert.Equal(new[] { "old.img" }, FileFacts.Listing(dir));
            Assert.Equal((oldHash, inode), (FileFacts.Hash(old), Shell.Run("stat", "-c", "%i", old).Trim()));
        }

        [SkippableFact]
        public void AChmodOfTheReplacedFileWhileTheCopyIsMadeIsNeverUndone()
        {
            // A copy across filesystems takes a while: the owner makes the file private meanwhile.
            string src = Path.Combine(fs.NewDirectory(TestFs.Xfs, "chmod-race"), "big.img");
            Shell.Run("dd", "if=/dev/urandom", "of=" + src, "bs=4M", "count=96", "status=none");
            string dir = fs.NewDirectory(TestFs.Btrfs, "chmod-race");
            string dst = Path.Combine(dir, "d.img");
            FileBuilder.Chunks(dst, 1, 4096, 4096, seed: 51);
            Shell.Run("chmod", "0644", dst);
            string old = FileFacts.Hash(dst);
            var run = System.Threading.Tasks.Task.Run(() => Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Force -Fallback Copy", ("s", src), ("d", dst)));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            bool seen = false;
            while (!seen && !run.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                // The new file, not named yet, open in this process (the in-process host).
                foreach (string fd in Directory.GetFiles("/proc/self/fd"))
                {
                    string? target = null;
                    try
                    {
                        target = new FileInfo(fd).LinkTarget;
                    }
                    catch (IOException)
                    {
                    }

                    if (target is not null && target.StartsWith(dir + "/", StringComparison.Ordinal) && target.EndsWith("(deleted)", StringComparison.Ordinal))
                    {
                        seen = true;
                        break;
                    }
                }
            }

            Assert.True(seen, "the copy was never seen under way");
            Shell.Run("chmod", "0600", dst);
            PwshResult r = run.GetAwaiter().GetResult();

            // The chmod is never undone: the new file takes the mode as it is once the data is copied, and a
            // change after that (up to the exchange) leaves the old file in place.
            Assert.Equal("600", Shell.Run("stat", "-c", "%a", dst).Trim());
            if (r.Errors.Count == 0)
            {
                Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));
            }
            else
            {
                Expect.ErrorSaying(r, "NewBtrfsReflinkCommand", dst, "FileChangedDuringCopy", ErrorCategory.InvalidOperation, "changed (its owner, mode, ACL or data)", "left as it is");
                Assert.Equal(old, FileFacts.Hash(dst));
            }

            Assert.Equal(new[] { "d.img" }, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void PreserveCarriesTheSourcesAccessAclAndNotTheDirectorysDefault()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "preserve-acl");
            string d = Directory.CreateDirectory(Path.Combine(dir, "d")).FullName;
            Shell.Run("setfacl", "-d", "-m", "u:daemon:rwx", d);
            string src = Path.Combine(dir, "src.img"), strict = Path.Combine(dir, "strict.img");
            FileBuilder.Chunks(src, 2, 65536, 65536, seed: 41);
            FileBuilder.Chunks(strict, 2, 65536, 65536, seed: 42);
            Shell.Run("chmod", "0640", src);
            Shell.Run("chmod", "0600", strict);
            Shell.Run("setfacl", "-m", "u:bin:r,g::-", strict);
            string existing = Path.Combine(d, "secret.img");
            FileBuilder.Chunks(existing, 1, 4096, 4096, seed: 43);
            Shell.Run("setfacl", "-b", existing);

            // A new copy and a replaced file, both with -Preserve: the source's ACL (none, or its own), as cp -p.
            foreach ((string from, string to, string force) in new[] { (src, Path.Combine(d, "copy.img"), string.Empty), (src, existing, " -Force"), (strict, Path.Combine(d, "strict.img"), string.Empty) })
            {
                Assert.Empty(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Preserve" + force, ("s", from), ("d", to)).Errors);
                Assert.Equal(Shell.Run("getfacl", "-cp", from), Shell.Run("getfacl", "-cp", to));
                Assert.Equal(Shell.Run("stat", "-c", "%a", from), Shell.Run("stat", "-c", "%a", to));
                Assert.NotEqual(0, Shell.Try("setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "cat", to).ExitCode);
            }

            // A directory tree with -Recurse -Preserve: each directory gets its source's access and default ACLs, not
            // those the destination's default gives a new directory (before: daemon could list the copy of a 0750
            // directory it could not list; a review).
            string tree = Directory.CreateDirectory(Path.Combine(dir, "tree", "inner")).Parent!.FullName;
            FileBuilder.Chunks(Path.Combine(tree, "inner", "f.img"), 1, 4096, 4096, seed: 44);
            Shell.Run("chmod", "0750", tree, Path.Combine(tree, "inner"));
            Shell.Run("setfacl", "-d", "-m", "u:bin:rx", Path.Combine(tree, "inner")); // a default of its own, kept
            Assert.Empty(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Preserve", ("s", tree), ("d", d)).Errors);
            foreach (string rel in new[] { string.Empty, "inner" })
            {
                string from = Path.Combine(tree, rel), to = Path.Combine(d, "tree", rel);
                Assert.Equal(Shell.Run("getfacl", "-cp", from), Shell.Run("getfacl", "-cp", to));
                Assert.Equal(Shell.Run("stat", "-c", "%a", from), Shell.Run("stat", "-c", "%a", to));
            }

            Assert.NotEqual(0, Shell.Try("setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "ls", Path.Combine(d, "tree")).ExitCode);
        }

        [SkippableFact]
        public void WhatIfCreatesNothingAndSaysWhatItWouldCloneWithoutAnExtentCountItDidNotMake()
        {
            // Before: "(64.0 KiB, 0 extents, no data copied)" for every file too small to be worth counting.
            string dir = fs.NewDirectory(TestFs.Btrfs, "reflink-whatif");
            string src = Path.Combine(dir, "a.img"), dst = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(src, 2, 32768, 32768, seed: 3);
            PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -WhatIf", captureHost: true, variables: new Dictionary<string, object?> { ["s"] = src, ["d"] = dst });
            Assert.Empty(r.Errors);
            Assert.Empty(r.Output);
            Assert.False(File.Exists(dst));
            string text = r.HostText.Replace("\n", " ", StringComparison.Ordinal);
            Assert.Contains($"Clone '{src}' (64.0 KiB, no data copied)", text, StringComparison.Ordinal);
            Assert.DoesNotContain("0 extents", text, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ADirectoryDestinationGetsTheSourceName()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "intodir");
            string src = Path.Combine(dir, "a.img");
            FileBuilder.Chunks(src, 2, 65536, 65536);
            string target = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            ReflinkResult r = Assert.Single(Clone("New-BtrfsReflink $s $d", ("s", src), ("d", target)).Objects<ReflinkResult>());
            Assert.Equal(Path.Combine(target, "a.img"), r.Path);
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(r.Path));
        }

        [SkippableFact]
        public void ANoCowSourceIntoACowDirectoryWorksAndTheCopyIsNoCowWithAWarning()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "nocow");
            string nocow = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
            string cow = Directory.CreateDirectory(Path.Combine(dir, "cow")).FullName;
            Shell.Run("chattr", "+C", nocow);
            string src = Path.Combine(nocow, "vm.img");
            FileBuilder.Chunks(src, 4, 1 << 20, 1 << 20);
            Assert.NotEqual(0, Shell.Try("cp", "--reflink=always", src, Path.Combine(cow, "cp.img")).ExitCode); // what users meet today

            PwshResult r = Clone("New-BtrfsReflink $s $d", ("s", src), ("d", cow));
            Assert.Empty(r.Errors);
            string dst = Path.Combine(cow, "vm.img");
            Assert.True(FileFacts.HasNoCow(dst));
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));
            Assert.All(Filefrag.Extents(dst), e => Assert.Contains("shared", e.Flags));
            Assert.Contains("NOCOW like its source: no checksums, no compression", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ForceOverACowDestinationFromANoCowSourceIsRefusedAndFallbackCopyCopies()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "mismatch");
            string nocow = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
            Shell.Run("chattr", "+C", nocow);
            string src = Path.Combine(nocow, "vm.img");
            FileBuilder.Chunks(src, 4, 1 << 20, 1 << 20, seed: 1);
            string dst = Path.Combine(dir, "old-backup.img");
            FileBuilder.Chunks(dst, 2, 1 << 20, 1 << 20, seed: 2);
            FileFacts before = FileFacts.Of(dst);
            string[] listing = FileFacts.Listing(dir);

            PwshResult r = Clone("New-BtrfsReflink $s $d -Force", ("s", src), ("d", dst));
            Expect.ErrorSaying(r, "NewBtrfsReflinkCommand", dst, "ReflinkChecksumClassMismatch", ErrorCategory.InvalidOperation, "the source", "is NOCOW and the destination is not", "-Fallback Copy", "left exactly as it was");
            Assert.Equal(before, FileFacts.Of(dst));
            Assert.Equal(listing, FileFacts.Listing(dir));

            r = Clone("New-BtrfsReflink $s $d -Force -Fallback Copy", ("s", src), ("d", dst));
            Assert.Empty(r.Errors);
            ReflinkResult res = Assert.Single(r.Objects<ReflinkResult>());
            Assert.Equal(ReflinkMethod.Copy, res.Method);
            Assert.Equal(0, res.SharedBytes);
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));
            Assert.False(FileFacts.HasNoCow(dst)); // the destination keeps its own state
            Assert.Contains("full copy, not a reflink", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void AnExistingDestinationNeedsForceAndTheSourceCannotBeItsOwnDestination()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "exists");
            string src = Path.Combine(dir, "a.img");
            string dst = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(src, 1, 65536, 65536, seed: 1);
            FileBuilder.Chunks(dst, 1, 65536, 65536, seed: 2);
            FileFacts before = FileFacts.Of(dst);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", src), ("d", dst)), "NewBtrfsReflinkCommand", dst, "DestinationExists", ErrorCategory.ResourceExists, "-Force");
            Assert.Equal(before, FileFacts.Of(dst));
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $s -Force", ("s", src)), "NewBtrfsReflinkCommand", src, "SourceIsDestination", ErrorCategory.InvalidArgument, "onto itself");
            string link = Path.Combine(dir, "link.img");
            File.CreateSymbolicLink(link, dst);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Force", ("s", src), ("d", link)), "NewBtrfsReflinkCommand", link, "PathIsSymbolicLink", ErrorCategory.InvalidArgument, dst);
            Assert.Equal(before, FileFacts.Of(dst));

            // Someone else's link: where it leads is said, with whose link it is, not recommended blindly.
            Shell.Run("chown", "-h", "65534", link);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Force", ("s", src), ("d", link)), "NewBtrfsReflinkCommand", link, "PathIsSymbolicLink", ErrorCategory.InvalidArgument, "the link belongs to user 65534: check where it leads");
            Assert.Equal(before, FileFacts.Of(dst));

            // A link to nothing is still a link (not "being replaced"), and the message says it leads nowhere.
            string dangling = Path.Combine(dir, "dangling.img");
            File.CreateSymbolicLink(dangling, Path.Combine(dir, "gone.img"));
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Force", ("s", src), ("d", dangling)), "NewBtrfsReflinkCommand", dangling, "PathIsSymbolicLink", ErrorCategory.InvalidArgument, "It leads nowhere that exists.");
            Assert.False(File.Exists(Path.Combine(dir, "gone.img")));
        }

        [SkippableFact]
        public void RangesAreClonedAlignedAndRefusedClearlyOtherwise()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "range");
            string src = Path.Combine(dir, "src.img");
            byte[] data = FileBuilder.RandomBytes((256 * 1024) + 1000, 4); // ends in a partial block
            FileBuilder.WriteNew(src, data);
            string dst = Path.Combine(dir, "dst.img");

            ReflinkResult r = Assert.Single(Clone("New-BtrfsReflink $s $d -SourceOffset 64KB -Length 64KB -DestinationOffset 128KB", ("s", src), ("d", dst)).Objects<ReflinkResult>());
            Assert.Equal(65536, r.Length);
            byte[] got = File.ReadAllBytes(dst);
            Assert.Equal(192 * 1024, got.Length);
            Assert.Equal(data.AsSpan(65536, 65536).ToArray(), got.AsSpan(131072, 65536).ToArray());
            Assert.Equal(new byte[131072], got.AsSpan(0, 131072).ToArray()); // a hole before

            // A range that ends at the source's end may have an unaligned length.
            string tail = Path.Combine(dir, "tail.img");
            Assert.Empty(Clone("New-BtrfsReflink $s $d -SourceOffset 256KB", ("s", src), ("d", tail)).Errors);
            Assert.Equal(data.AsSpan(262144).ToArray(), File.ReadAllBytes(tail).AsSpan(262144).ToArray());

            string un = Path.Combine(dir, "un.img");
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -SourceOffset 1000 -Length 4096", ("s", src), ("d", un)), "NewBtrfsReflinkCommand", un, "InvalidArgument", ErrorCategory.InvalidArgument, "block size, 4096 bytes");
            Assert.False(File.Exists(un));

            // An offset at or past the end without -Length: nothing is left from there, said so (before: "Cannot clone
            // -1073479680 bytes", the rest's length computed; a hostile review).
            PwshResult past = Clone("New-BtrfsReflink $s $d -SourceOffset 1GB", ("s", src), ("d", un));
            Expect.ErrorSaying(past, "NewBtrfsReflinkCommand", un, "InvalidArgument", ErrorCategory.InvalidArgument, "so nothing is left from there");
            Assert.DoesNotContain("clone -", Assert.Single(past.Errors).Exception.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(un));
            string empty = Path.Combine(dir, "empty.img");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -DestinationOffset 0", ("s", empty), ("d", un)), "NewBtrfsReflinkCommand", un, "InvalidArgument", ErrorCategory.InvalidArgument, "it is empty, so there is nothing to clone");
            Assert.False(File.Exists(un));

            FileFacts before = FileFacts.Of(src);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $s -SourceOffset 0 -Length 128KB -DestinationOffset 64KB -Force", ("s", src)), "NewBtrfsReflinkCommand", src, "InvalidArgument", ErrorCategory.InvalidArgument, "overlap");
            Assert.Equal(before, FileFacts.Of(src));

            // Offsets near the largest one: refused as what they are, never added into a wrap-around (before: the kernel's
            // EINVAL, explained as a NOCOW mismatch or an unaligned range; a hostile test).
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $s -SourceOffset 9223372036854771712 -Length 4096 -DestinationOffset 0 -Force", ("s", src)), "NewBtrfsReflinkCommand", src, "InvalidArgument", ErrorCategory.InvalidArgument, "the file has");
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $s -SourceOffset 0 -Length 4096 -DestinationOffset 9223372036854771712 -Force", ("s", src)), "NewBtrfsReflinkCommand", src, "InvalidArgument", ErrorCategory.InvalidArgument, "past the largest offset");
            Assert.Equal(before, FileFacts.Of(src));

            // Non-overlapping ranges within one file are fine.
            Assert.Empty(Clone("New-BtrfsReflink $s $s -SourceOffset 0 -Length 64KB -DestinationOffset 128KB -Force", ("s", src)).Errors);
            byte[] now = File.ReadAllBytes(src);
            Assert.Equal(now.AsSpan(0, 65536).ToArray(), now.AsSpan(131072, 65536).ToArray());
        }

        [SkippableFact]
        public void ClonesAcrossSubvolumesOfOneFilesystemWork()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "subvols");
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(dir, "a"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(dir, "b"));
            string src = Path.Combine(dir, "a", "vm.img");
            FileBuilder.Chunks(src, 2, 1 << 20, 1 << 20);
            PwshResult r = Clone("New-BtrfsReflink $s $d", ("s", src), ("d", Path.Combine(dir, "b")));
            Assert.Empty(r.Errors);
            Assert.Equal(2L << 20, Assert.Single(r.Objects<ReflinkResult>()).SharedBytes);
        }

        [SkippableFact]
        public void ALinkWhoseTargetIsNotUtf8PointsWhereItDidInTheCopy()
        {
            // Before: the target was decoded with U+FFFD for its bad bytes, and the copy of 'x\xff' pointed at
            // 'x\xef\xbf\xbd', somewhere else. Found by a code review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "link-not-utf8");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 1, 4096, 4096);
            Shell.Run("bash", "-c", "ln -s $'x\\xff/y' \"$0/odd\"", src);
            string Target(string link) => Shell.Run("bash", "-c", "readlink -n \"$0\" | od -An -tx1", link).Trim();
            string before = Target(Path.Combine(src, "odd"));
            Assert.Equal("78 ff 2f 79", before);
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", Path.Combine(dir, "copy")));
            Assert.Empty(r.Errors);
            Assert.Equal(before, Target(Path.Combine(dir, "copy", "odd")));
        }

        [SkippableFact]
        public void RecurseMirrorsATreeWithLinksKeepingWhatPreserveKeeps()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "tree");
            string src = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
            Directory.CreateDirectory(Path.Combine(src, "sub", "deeper"));
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "sub", "b.img"), 2, 65536, 65536, seed: 2);
            FileBuilder.Chunks(Path.Combine(src, "sub", "deeper", "c.img"), 2, 65536, 65536, seed: 3);
            File.CreateSymbolicLink(Path.Combine(src, "current.img"), "sub/b.img");
            string outside = fs.NewDirectory(TestFs.Btrfs, "outside");
            Directory.CreateSymbolicLink(Path.Combine(src, "elsewhere"), outside);
            FileBuilder.Chunks(Path.Combine(outside, "x.img"), 1, 4096, 4096);
            Shell.Run("chown", "-R", "-h", "1234:5678", src);
            Shell.Run("chmod", "0640", Path.Combine(src, "a.img"));
            Shell.Run("chmod", "0750", Path.Combine(src, "sub"));
            Shell.Run("touch", "-h", "-d", "2020-02-03 04:05:06", Path.Combine(src, "a.img"), Path.Combine(src, "sub"), Path.Combine(src, "current.img"));
            string dst = Directory.CreateDirectory(Path.Combine(dir, "backup")).FullName;

            PwshResult r = Clone("New-BtrfsReflink $s $d -Recurse -Preserve", ("s", src), ("d", dst));
            Assert.Empty(r.Errors);
            string copy = Path.Combine(dst, "images");
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((copy, src, 3L, 2L, 2L, 0L, true), (tree.Path, tree.Source, tree.Files, tree.Directories, tree.SymbolicLinks, tree.Errors, tree.AppearedWhole));
            Assert.Equal(new FileInfo(Path.Combine(src, "a.img")).Length + new FileInfo(Path.Combine(src, "sub", "b.img")).Length + new FileInfo(Path.Combine(src, "sub", "deeper", "c.img")).Length, tree.Bytes);
            Assert.Equal(new[] { "images" }, FileFacts.Listing(dst)); // the hidden staging directory is gone: it became "images"
            foreach (string rel in new[] { "a.img", "sub/b.img", "sub/deeper/c.img" })
            {
                Assert.Equal(FileFacts.Hash(Path.Combine(src, rel)), FileFacts.Hash(Path.Combine(copy, rel)));
                Assert.All(Filefrag.Extents(Path.Combine(copy, rel)), e => Assert.Contains("shared", e.Flags));
            }

            Assert.Equal("sub/b.img", new FileInfo(Path.Combine(copy, "current.img")).LinkTarget);
            Assert.Equal(outside, new DirectoryInfo(Path.Combine(copy, "elsewhere")).LinkTarget); // recreated, not followed
            Assert.Equal(FileAttributes.ReparsePoint, File.GetAttributes(Path.Combine(copy, "elsewhere")) & FileAttributes.ReparsePoint);
            foreach (string rel in new[] { "a.img", "sub", "current.img" })
            {
                Assert.Equal(Shell.Run("stat", "-c", "%a %u %g %Y", Path.Combine(src, rel)), Shell.Run("stat", "-c", "%a %u %g %Y", Path.Combine(copy, rel)));
            }

            Assert.Contains(r.Progress, p => p.PercentComplete is > 0 and <= 100);
        }

        [SkippableFact]
        public void ATreesNewDirectoriesTakeTheirSourcesNoCowStateAndAnExistingOneIsLeftAsItIs()
        {
            // Before: the directories of a NOCOW tree's copy were COW (their parent's state): one warning per file that
            // its directory would have made it COW, and a disk image made there later was COW.
            string dir = fs.NewDirectory(TestFs.Btrfs, "nocow-tree");
            string src = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName;
            Shell.Run("chattr", "+C", src);
            Directory.CreateDirectory(Path.Combine(src, "sub"));
            string cowSub = Directory.CreateDirectory(Path.Combine(src, "cow")).FullName;
            Shell.Run("chattr", "-C", cowSub);
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "sub", "b.img"), 2, 65536, 65536, seed: 2);
            FileBuilder.Chunks(Path.Combine(cowSub, "c.img"), 2, 65536, 65536, seed: 3);
            Assert.True(FileFacts.HasNoCow(Path.Combine(src, "sub", "b.img")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(cowSub, "c.img")));

            // A COW file in a NOCOW directory (made before the directory was marked): copied as it is, without a word
            // (a hostile review: a warning per such file once the copy's directories took their sources' state).
            string mixed = Directory.CreateDirectory(Path.Combine(src, "mixed")).FullName;
            Shell.Run("chattr", "-C", mixed);
            FileBuilder.Chunks(Path.Combine(mixed, "old.img"), 1, 65536, 65536, seed: 5);
            Shell.Run("chattr", "+C", mixed);
            Assert.False(FileFacts.HasNoCow(Path.Combine(mixed, "old.img")));
            string copy = Path.Combine(dir, "backup");

            PwshResult r = Clone("New-BtrfsReflink $s $d -Recurse", ("s", src), ("d", copy));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            Assert.Equal((4L, 0L), (r.Objects<ReflinkTreeResult>().Single().Files, r.Objects<ReflinkTreeResult>().Single().Errors));
            Assert.True(FileFacts.HasNoCow(Path.Combine(copy, "mixed")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(copy, "mixed", "old.img")));
            Assert.True(FileFacts.HasNoCow(copy));
            Assert.True(FileFacts.HasNoCow(Path.Combine(copy, "sub")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(copy, "cow")));
            Assert.True(FileFacts.HasNoCow(Path.Combine(copy, "sub", "b.img")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(copy, "cow", "c.img")));
            FileBuilder.WriteNew(Path.Combine(copy, "sub", "later.img"), FileBuilder.RandomBytes(4096, 9));
            Assert.True(FileFacts.HasNoCow(Path.Combine(copy, "sub", "later.img"))); // a file made there later is NOCOW, as in the source

            // A COW tree copied into a NOCOW directory: its new top is COW, as its source.
            string cowTree = Directory.CreateDirectory(Path.Combine(dir, "cowtree")).FullName;
            FileBuilder.Chunks(Path.Combine(cowTree, "d.img"), 1, 65536, 65536, seed: 4);
            r = Clone("New-BtrfsReflink $s $d -Recurse", ("s", cowTree), ("d", Path.Combine(src, "cowcopy")));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            Assert.False(FileFacts.HasNoCow(Path.Combine(src, "cowcopy")));
            Assert.False(FileFacts.HasNoCow(Path.Combine(src, "cowcopy", "d.img")));

            // Merged into an existing COW directory: it stays COW (each NOCOW file copied there is said once).
            string existing = Directory.CreateDirectory(Path.Combine(dir, "existing", "sub")).FullName;
            r = Clone("New-BtrfsReflink $s $d -Recurse", ("s", Path.Combine(src, "sub")), ("d", Path.Combine(dir, "existing")));
            Assert.Empty(r.Errors);
            Assert.False(FileFacts.HasNoCow(existing));
            Assert.True(FileFacts.HasNoCow(Path.Combine(existing, "b.img")));
            Assert.Contains("its directory would have made it COW", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void AFileOfProcIsRefusedNotCopiedEmpty()
        {
            // Before: /proc/self/status (size 0, made as it is read) became an empty copy, reported a success (a hostile review).
            string dir = fs.NewDirectory(TestFs.Btrfs, "proc-source");
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath /proc/self/status -Destination $d -Fallback Copy", ("d", Path.Combine(dir, "status")));
            Assert.Equal("OperationNotSupported", Assert.Single(r.ErrorIds));
            Assert.Equal("/proc/self/status", r.Errors[0].TargetObject);
            Assert.Empty(r.Output);
            Assert.Empty(FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void PreserveWithoutRootKeepsModeAndTimesAndLeavesTheCopiesThisUsersAsCpPDoes()
        {
            // Before: as a user who may not give files another owner, -Recurse -Preserve refused every file (AccessDenied:
            // "Cannot give the copy the owner and group of") and published an empty tree (a hostile review). As cp -p:
            // the copies are this user's, with the source's mode and times, without set-user-ID where the owner differs.
            string dir = fs.NewDirectory(TestFs.Btrfs, "preserve-nonroot");
            string src = Directory.CreateDirectory(Path.Combine(dir, "pub", "sub")).Parent!.FullName;
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "tool"), 1, 4096, 4096, seed: 2);
            FileBuilder.Chunks(Path.Combine(src, "sub", "b.img"), 2, 65536, 65536, seed: 3);
            Shell.Run("chown", "-R", "1234:5678", src);
            Shell.Run("chmod", "0640", Path.Combine(src, "a.img"));
            Shell.Run("chmod", "o+r", Path.Combine(src, "a.img"));
            Shell.Run("chmod", "4755", Path.Combine(src, "tool"));
            Shell.Run("chmod", "0755", Path.Combine(src, "sub"));
            Shell.Run("touch", "-d", "2020-02-03 04:05:06", Path.Combine(src, "a.img"), Path.Combine(src, "tool"), Path.Combine(src, "sub"));
            string dst = Directory.CreateDirectory(Path.Combine(dir, "out")).FullName;
            Shell.Run("chown", "nobody", dst);

            PwshResult r;
            using (Unprivileged.Begin())
            {
                r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Preserve", ("s", src), ("d", dst));
            }

            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((3L, 0L), (tree.Files, tree.Errors));
            string copy = Path.Combine(dst, "pub");
            string nobody = Shell.Run("id", "-u", "nobody").Trim() + " " + Shell.Run("id", "-g", "nobody").Trim();
            foreach ((string rel, string mode) in new[] { ("a.img", "644"), ("tool", "755"), ("sub", "755"), ("sub/b.img", "644") })
            {
                Assert.Equal($"{mode} {nobody} " + Shell.Run("stat", "-c", "%Y", Path.Combine(src, rel)).Trim(), Shell.Run("stat", "-c", "%a %u %g %Y", Path.Combine(copy, rel)).Trim());
                if (rel != "sub")
                {
                    Assert.Equal(FileFacts.Hash(Path.Combine(src, rel)), FileFacts.Hash(Path.Combine(copy, rel)));
                }
            }
        }

        [SkippableTheory]
        [InlineData(false)]
        [InlineData(true)]
        public void RecurseKeepsHardLinksAsCpADoes(bool passThru)
        {
            // Before: every name of a file with several links became a clone of its own (three inodes for one).
            string dir = fs.NewDirectory(TestFs.Btrfs, passThru ? "hardlinks-passthru" : "hardlinks");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src", "sub")).Parent!.FullName;
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 1);
            Shell.Run("ln", Path.Combine(src, "a.img"), Path.Combine(src, "sub", "b.img"));
            Shell.Run("ln", Path.Combine(src, "a.img"), Path.Combine(src, "c.img"));
            FileBuilder.Chunks(Path.Combine(dir, "outside.img"), 1, 4096, 4096, seed: 2);
            Shell.Run("ln", Path.Combine(dir, "outside.img"), Path.Combine(src, "sub", "in.img")); // its other name is not copied
            string backup = Directory.CreateDirectory(Path.Combine(dir, "backup")).FullName;
            string dest = Path.Combine(backup, "src");

            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse" + (passThru ? " -PassThru" : string.Empty), ("s", src), ("d", backup));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            string IdAndLinks(string rel) => Shell.Run("stat", "-c", "%i %h", Path.Combine(dest, rel)).Trim();
            string a = IdAndLinks("a.img");
            Assert.EndsWith(" 3", a, StringComparison.Ordinal);
            Assert.Equal(a, IdAndLinks("sub/b.img"));
            Assert.Equal(a, IdAndLinks("c.img"));
            Assert.NotEqual(Shell.Run("stat", "-c", "%i", Path.Combine(src, "a.img")).Trim(), a.Split(' ')[0]); // a copy, not a link into the source
            Assert.EndsWith(" 1", IdAndLinks("sub/in.img"), StringComparison.Ordinal);
            Assert.All(Filefrag.Extents(Path.Combine(dest, "a.img")), e => Assert.Contains("shared", e.Flags));
            foreach (string rel in new[] { "a.img", "sub/b.img", "c.img", "sub/in.img" })
            {
                Assert.Equal(FileFacts.Hash(Path.Combine(src, rel)), FileFacts.Hash(Path.Combine(dest, rel)));
            }

            if (passThru)
            {
                ReflinkResult[] made = r.Objects<ReflinkResult>().ToArray();
                Assert.Equal(4, made.Length);
                ReflinkResult[] links = made.Where(m => m.Method == ReflinkMethod.HardLink).ToArray();
                Assert.Equal(2, links.Length);
                Assert.All(links, l => Assert.Equal((0L, 2L << 16), (l.Length, l.SharedBytes)));
            }
            else
            {
                ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
                Assert.Equal((2L, 2L, (2L << 16) + 4096, true), (tree.Files, tree.HardLinks, tree.Bytes, tree.AppearedWhole));
            }

            // Into the existing tree again: a name that exists is never linked over (an error without -Force, as for any
            // file); a missing one is made again.
            File.Delete(Path.Combine(dest, "c.img"));
            PwshResult again = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", backup));
            Assert.Equal(
                new[] { "a.img", "b.img", "in.img" },
                again.Errors.Select(e => Path.GetFileName(e.TargetObject.ToString())).Order(StringComparer.Ordinal));
            Assert.All(again.Errors, e => Assert.StartsWith("DestinationExists", e.FullyQualifiedErrorId, StringComparison.Ordinal));
            Assert.Equal(a.Split(' ')[0] + " 2", IdAndLinks("a.img")); // left as it was
            Assert.Equal(FileFacts.Hash(Path.Combine(src, "c.img")), FileFacts.Hash(Path.Combine(dest, "c.img")));
        }

        [SkippableFact]
        public void AForcedReflinkAfterARunKilledAtItsRemovalReplacesAndRemovesTheLeftover()
        {
            // Before: the next run removed the killed run's leftover after it had taken the destination's state, so the
            // marks it took off the destination looked like a change made while the copy was made: refused ("Run the
            // command again"). Found by a hostile test; the kill is placed by strace at the removal (unlinkat).
            Requires.That(Shell.Try("strace", "-V").ExitCode == 0, "strace is not installed (.ci/run installs it)");
            string dir = fs.NewDirectory(TestFs.Btrfs, "force-after-kill");
            string src = Path.Combine(dir, "src.img"), dst = Path.Combine(dir, "dst.img");
            FileBuilder.WriteNew(src, FileBuilder.RandomBytes(300 << 10, 41));
            FileBuilder.WriteNew(dst, FileBuilder.RandomBytes(1 << 10, 42));
            string old = FileFacts.Hash(dst);
            RealPwsh.Result killed = RealPwsh.RunWrapped(
                "New-BtrfsReflink -LiteralPath $S -Destination $D -Force",
                new[] { "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlinkat", "-e", "inject=unlinkat:signal=KILL" },
                ("S", src),
                ("D", dst));
            Assert.True(killed.ExitCode != 0, "the run was not killed: " + killed.StdOut + killed.StdErr);
            string leftover = Assert.Single(Directory.GetFiles(dir, ".dst.img.~btrfs-*"));
            Assert.Equal(old, FileFacts.Hash(leftover));
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(dst));

            string src2 = Path.Combine(dir, "src2.img");
            FileBuilder.WriteNew(src2, FileBuilder.RandomBytes(300 << 10, 43));
            PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Force", ("s", src2), ("d", dst));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            Assert.StartsWith($"Removed '{leftover}'", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(new[] { "dst.img", "src.img", "src2.img" }, FileFacts.Listing(dir).Order(StringComparer.Ordinal));
            Assert.Equal(FileFacts.Hash(src2), FileFacts.Hash(dst));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", dst), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void RecurseForceOverItsOwnMirrorKeepsHardLinksAndRefusesANameInUse()
        {
            // Before: with -Force over an existing mirror, every other name of a file with several links was cloned on
            // its own (the names that were one file in the source became three files, and a write to one was no longer
            // seen in the others).
            string dir = fs.NewDirectory(TestFs.Btrfs, "hardlinks-force");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src", "sub")).Parent!.FullName;
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 3);
            Shell.Run("ln", Path.Combine(src, "a.img"), Path.Combine(src, "sub", "b.img"));
            Shell.Run("ln", Path.Combine(src, "a.img"), Path.Combine(src, "c.img"));
            FileBuilder.Chunks(Path.Combine(src, "lone.img"), 1, 4096, 4096, seed: 4);
            string backup = Directory.CreateDirectory(Path.Combine(dir, "backup")).FullName;
            string dest = Path.Combine(backup, "src");
            Assert.Empty(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", backup)).Errors);
            string IdAndLinks(string rel) => Shell.Run("stat", "-c", "%i %h", Path.Combine(dest, rel)).Trim();
            string first = IdAndLinks("a.img");

            // The source changes (every name of it: one file), and the mirror is made again over itself.
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 5);
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", backup));
            Assert.Empty(r.Errors);
            string second = IdAndLinks("a.img");
            Assert.EndsWith(" 3", second, StringComparison.Ordinal);
            Assert.NotEqual(first.Split(' ')[0], second.Split(' ')[0]);
            Assert.Equal(second, IdAndLinks("sub/b.img"));
            Assert.Equal(second, IdAndLinks("c.img"));
            Assert.All(r.Warnings, w => Assert.Contains("mirror other names", w.Message, StringComparison.Ordinal));
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((2L, 2L, 0L), (tree.Files, tree.HardLinks, tree.Errors));
            foreach (string rel in new[] { "a.img", "sub/b.img", "c.img", "lone.img" })
            {
                Assert.Equal(FileFacts.Hash(Path.Combine(src, rel)), FileFacts.Hash(Path.Combine(dest, rel)));
            }

            // A name of the mirror that is a file of its own now, held open by a process: -Force never replaces a file in
            // use, by a link no more than by a clone; it is left exactly as it is, and the other names are linked.
            string b = Path.Combine(dest, "sub", "b.img");
            File.Delete(b);
            Shell.Run("cp", Path.Combine(dest, "a.img"), b);
            string heldBefore = IdAndLinks("sub/b.img"), heldHash = FileFacts.Hash(b);
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 6);
            using (ChildProcess.HoldingOpen(b))
            {
                PwshResult held = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", backup));
                ErrorRecord e = Assert.Single(held.Errors);
                Assert.Equal("FileInUse,Btrfs.Commands.NewBtrfsReflinkCommand", e.FullyQualifiedErrorId);
                Assert.Equal(b, e.TargetObject);
            }

            Assert.Equal(heldBefore, IdAndLinks("sub/b.img"));
            Assert.Equal(heldHash, FileFacts.Hash(b));
            string third = IdAndLinks("a.img");
            Assert.EndsWith(" 2", third, StringComparison.Ordinal);
            Assert.Equal(third, IdAndLinks("c.img"));
            Assert.Equal(FileFacts.Hash(Path.Combine(src, "a.img")), FileFacts.Hash(Path.Combine(dest, "c.img")));
            Assert.Empty(Directory.GetFiles(dest, "*~btrfs-*", SearchOption.AllDirectories));

            // Where a link would change more than the data, each gets a clone of its own, as a replacement keeps the file's
            // access rules and never crosses into another subvolume (a review: the link took the copy's mode, and the
            // link across a subvolume was an error): a name made private (mode 0600), and a directory that is a subvolume.
            string c = Path.Combine(dest, "c.img");
            string Warnings(PwshResult x) => string.Join("\n", x.Warnings.Select(w => w.Message));
            File.Delete(c);
            Shell.Run("cp", Path.Combine(dest, "a.img"), c);
            Shell.Run("chmod", "600", c);
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 7);
            PwshResult own = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", backup));
            Assert.Empty(own.Errors);
            Assert.True(own.Warnings.Any(w => w.Message.Contains($"'{c}' is a clone of its own", StringComparison.Ordinal) && w.Message.Contains("another owner, group, mode or access ACL", StringComparison.Ordinal)), Warnings(own));
            Assert.Equal("600", Shell.Run("stat", "-c", "%a", c).Trim());
            Assert.EndsWith(" 1", IdAndLinks("c.img"), StringComparison.Ordinal);
            Assert.Equal(FileFacts.Hash(Path.Combine(src, "c.img")), FileFacts.Hash(c));
            Assert.Equal((3L, 1L), (Assert.Single(own.Objects<ReflinkTreeResult>()).Files, Assert.Single(own.Objects<ReflinkTreeResult>()).HardLinks));

            Shell.Run("rm", "-rf", Path.Combine(dest, "sub"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(dest, "sub"));
            Shell.Run("cp", Path.Combine(dest, "a.img"), b);
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 8);
            PwshResult across = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", backup));
            Assert.Empty(across.Errors);
            Assert.True(across.Warnings.Any(w => w.Message.Contains("another filesystem, subvolume or mount", StringComparison.Ordinal)), Warnings(across));
            foreach (string rel in new[] { "a.img", "sub/b.img", "c.img" })
            {
                Assert.Equal(FileFacts.Hash(Path.Combine(src, rel)), FileFacts.Hash(Path.Combine(dest, rel)));
            }

            Assert.NotEqual(IdAndLinks("sub/b.img").Split(' ')[0] + Shell.Run("stat", "-c", "%d", b), IdAndLinks("a.img").Split(' ')[0] + Shell.Run("stat", "-c", "%d", Path.Combine(dest, "a.img")));
        }

        [SkippableFact]
        public void ANameThatIsNotUtf8IsOneErrorAndTheRestOfTheTreeIsCopied()
        {
            // Before (found by a review of the NameNotUtf8 change): the error, about the directory being copied,
            // arrived amid its listing and made the mirror leave that directory and every one above it, so nothing
            // after it was copied, and the tree still appeared as the copy.
            string dir = fs.NewDirectory(TestFs.Btrfs, "tree-names");
            string src = Path.Combine(dir, "m");
            Shell.Run("bash", "-c", "cd \"$1\" && mkdir -p m/A && echo 1 > m/A/ok1 && : > m/A/$'bad\\xff' && echo 2 > m/A/ok2 && : > m/A/$'worse\\xfe' && mkdir m/A/S && echo s > m/A/S/s && mkdir m/B && echo 4 > m/B/f && echo 5 > m/z", "_", dir);
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", Path.Combine(dir, "m2")));
            Assert.Equal(new[] { "NameNotUtf8" }, r.ErrorIds); // one for the directory, naming both
            Assert.Contains("'bad\\xff'", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains("'worse\\xfe'", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((5L, 1L), (tree.Files, tree.Errors));
            Assert.Equal(
                new[] { "A/S/s", "A/ok1", "A/ok2", "B/f", "z" },
                Directory.GetFiles(Path.Combine(dir, "m2"), "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Path.Combine(dir, "m2"), f)).Order(StringComparer.Ordinal));
        }

        [SkippableFact]
        public void ANewTreeAppearsWholeAndAKilledRunLeavesOnlyItsMarkedStagingDirectoryWhichTheNextRunRemoves()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "staged");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            Shell.Run("python3", "-c", "import os,sys\nr=sys.argv[1]\nfor i in range(6000):\n d=f'{r}/d{i%60}'\n os.makedirs(d,exist_ok=True)\n open(f'{d}/f{i}','wb').write(os.urandom(4096))", src);
            string backups = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            string dest = Path.Combine(backups, "today");
            Requires.That(RealPwsh.ToolDirectory is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");

            // kill -9 while the tree is being built: the final name never shows a partial tree. Before the end for sure,
            // not by timing: every open of the last file waits in the kernel (a fanotify permission mark left
            // unanswered) until the run is killed, so the tree cannot be finished between a look and the kill.
            using (OpensHeld.Of(Path.Combine(src, "d59", "f5999")))
            using (ChildProcess child = ChildProcess.Start("dotnet", Path.Combine(RealPwsh.ToolDirectory!, "pwsh.dll"), "-NoProfile", "-NonInteractive", "-Command", $"'ready'; Import-Module '{RepoPaths.Manifest}'; New-BtrfsReflink -LiteralPath '{src}' -Destination '{dest}' -Recurse"))
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                string? hidden = null;
                while (clock.Elapsed < TimeSpan.FromSeconds(60))
                {
                    hidden = Directory.GetDirectories(backups, ".today.~btrfs-staging-*").FirstOrDefault();
                    try
                    {
                        if (hidden is not null && Directory.GetDirectories(hidden).Length >= 2)
                        {
                            break;
                        }
                    }
                    catch (DirectoryNotFoundException)
                    {
                        // Renamed into place between the two listings: the assertion below reports it.
                        break;
                    }

                    System.Threading.Thread.Sleep(2);
                }

                Assert.True(hidden is not null, "the staging directory never appeared: " + child.StdErr);
                child.Kill();
            }

            Assert.False(Directory.Exists(dest), Directory.Exists(dest) ? $"a tree of {Directory.GetFiles(dest, "*", SearchOption.AllDirectories).Length} of 6000 files appeared under the final name (fewer: a partial tree; all: the run ended before the kill)" : null);
            string leftover = Assert.Single(Directory.GetDirectories(backups, ".today.~btrfs-staging-*"));
            Assert.Contains("user.btrfs-module.temporary", Shell.Run("getfattr", "-d", leftover), StringComparison.Ordinal);

            // Someone else's look-alike (no marker) is never touched.
            string lookalike = Directory.CreateDirectory(Path.Combine(backups, ".today.~btrfs-staging-999999999-0badc0de")).FullName;

            // The next run removes the leftover (its marker proves it this module's own) and says so.
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", dest));
            Assert.Empty(r.Errors);
            Assert.Contains(Path.GetFileName(leftover), Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((6000L, 60L, true), (tree.Files, tree.Directories, tree.AppearedWhole));
            Assert.Equal(new[] { lookalike }, Directory.GetDirectories(backups, ".today.~btrfs-staging-*"));
            Assert.Equal(
                Shell.Run("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", src),
                Shell.Run("bash", "-c", "cd \"$1\" && find . -type f -exec sha256sum {} + | sort", "_", dest));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", dest), StringComparison.Ordinal);
        }

        [SkippableTheory]
        [InlineData("TERM")]
        [InlineData("HUP")]
        public void EndingPwshWithASignalMidTreeRemovesTheTreeBeingBuilt(string signal)
        {
            // systemd stopping a runbook (SIGTERM), or the terminal closing (SIGHUP), while a new tree is built hidden:
            // the run stops between files and removes it, as on Ctrl+C, and the process ends once it has. Before, the
            // marked hidden tree was left (hundreds of files) until a later run into the same directory. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "staged-" + signal);
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            Shell.Run("python3", "-c", "import os,sys\nr=sys.argv[1]\nfor i in range(600):\n d=f'{r}/d{i%6}'\n os.makedirs(d,exist_ok=True)\n open(f'{d}/f{i}','wb').write(os.urandom(4096))", src);
            string backups = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            string dest = Path.Combine(backups, "today");
            Requires.That(RealPwsh.ToolDirectory is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");

            // Mid-tree for sure: every open of d3's first file waits in the kernel (a fanotify permission mark) until
            // the signal has been sent; then the run goes on to its next file and sees it.
            using (OpensHeld held = OpensHeld.Of(Path.Combine(src, "d3", "f3")))
            using (ChildProcess child = ChildProcess.Start("dotnet", Path.Combine(RealPwsh.ToolDirectory!, "pwsh.dll"), "-NoProfile", "-NonInteractive", "-Command", $"'ready'; Import-Module '{RepoPaths.Manifest}'; New-BtrfsReflink -LiteralPath '{src}' -Destination '{dest}' -Recurse -NoSync; 'finished'"))
            {
                Assert.True(held.WaitForOpen(TimeSpan.FromSeconds(60)), "the run never reached d3/f3: " + child.StdErr);
                string hidden = Assert.Single(Directory.GetDirectories(backups, ".today.~btrfs-staging-*"));
                Assert.True(Directory.GetFiles(hidden, "*", SearchOption.AllDirectories).Length >= 300, "fewer files than d0-d2 hold were built before d3/f3");
                Shell.Run("kill", "-" + signal, child.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
                System.Threading.Thread.Sleep(300); // the signal's handler is waiting for the tree to go
                held.Dispose();
                int exitCode = child.WaitForExit(TimeSpan.FromSeconds(30)); // throws if it did not end
                Assert.NotEqual(0, exitCode);
                Assert.Null(child.ReadLine(TimeSpan.FromSeconds(1))); // not 'finished': ended by the signal
            }

            Assert.False(Directory.Exists(dest));
            Assert.Empty(Directory.GetFileSystemEntries(backups));
        }

        [SkippableFact]
        public void ALeftoverWithSomethingMountedOnOrInsideItIsKeptAndSaidSoNeverEmptiedThroughTheMount()
        {
            // Before: a bind mount of the same filesystem inside a killed run's leftover (same device, another
            // mount) was descended into and emptied when the next run removed the leftover: the mounted
            // directory's files were deleted, silently.
            string dir = fs.NewDirectory(TestFs.Btrfs, "staged-mount");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            FileBuilder.WriteNew(Path.Combine(src, "a.img"), FileBuilder.RandomBytes(65536, 5));
            string backups = Directory.CreateDirectory(Path.Combine(dir, "backups")).FullName;
            string victim = Directory.CreateDirectory(Path.Combine(dir, "victim")).FullName;
            FileBuilder.WriteNew(Path.Combine(victim, "precious"), FileBuilder.RandomBytes(4096, 6));
            Directory.CreateDirectory(Path.Combine(victim, "sub"));
            FileBuilder.WriteNew(Path.Combine(victim, "sub", "also"), FileBuilder.RandomBytes(4096, 7));

            // Two leftovers proven ours (marker matching the name, the owner, a pid that cannot live): one with a
            // directory mounted inside (kept, said so), one mounted over as a whole (what shows there is the
            // mounted directory, which has no marker: not ours, not touched).
            string Leftover(string stamp, params string[] inside)
            {
                string l = Directory.CreateDirectory(Path.Combine(backups, ".today.~btrfs-staging-" + stamp)).FullName;
                foreach (string d in inside)
                {
                    Directory.CreateDirectory(Path.Combine(l, d));
                }

                Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", stamp, l);
                return l;
            }

            string inner = Leftover("999999998-0badc0de", "d0", "d1");
            string whole = Leftover("999999997-0badc0df");
            var mounts = new List<string> { Path.Combine(inner, "d1"), whole };
            try
            {
                foreach (string m in mounts)
                {
                    Shell.Run("mount", "--bind", victim, m);
                }

                string Tree() => Shell.Run("bash", "-c", "cd \"$1\" && find . -exec sha256sum {} + 2>/dev/null; find . | sort", "_", victim);
                string listing = Tree();
                string dest = Path.Combine(backups, "today");
                PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", dest));
                Assert.Empty(r.Errors);
                Assert.Equal(listing, Tree());
                string warning = Assert.Single(r.Warnings).Message;
                Assert.Contains(Path.GetFileName(inner), warning, StringComparison.Ordinal);
                Assert.Contains("something is mounted on it or inside it", warning, StringComparison.Ordinal);
                Assert.Contains("./sub/also", listing, StringComparison.Ordinal);
                Assert.Equal(FileFacts.Hash(Path.Combine(src, "a.img")), FileFacts.Hash(Path.Combine(dest, "a.img")));
                Assert.True(Directory.Exists(Path.Combine(inner, "d1")));
            }
            finally
            {
                foreach (string m in mounts)
                {
                    Shell.Try("umount", m);
                }
            }
        }

        /// <summary>A source tree src/ of two directories of 200 files of 4 KiB: quiet/, then busy/ (created, so listed, in that order).</summary>
        private (string Dir, string Src, string Quiet, string Busy) QuietAndBusy(string hint)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, hint);
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            string quiet = Directory.CreateDirectory(Path.Combine(src, "quiet")).FullName;
            string busy = Directory.CreateDirectory(Path.Combine(src, "busy")).FullName;
            for (int i = 0; i < 200; i++)
            {
                FileBuilder.WriteNew(Path.Combine(busy, $"f{i:D3}"), FileBuilder.RandomBytes(4096, i));
                FileBuilder.WriteNew(Path.Combine(quiet, $"q{i:D3}"), FileBuilder.RandomBytes(4096, 1000 + i));
            }

            return (dir, src, quiet, busy);
        }

        [SkippableTheory]
        [InlineData(false)]
        [InlineData(true)]
        public void ASourceDirectoryWhoseNamesChangeDuringTheCopyIsSaidToHaveChanged(bool merge)
        {
            // Before: a name renamed in the source while the tree was copied could be missing from the copy
            // (btrfs's readdir does not show a name renamed after the listing began) with no warning and
            // Errors 0. Now a directory whose names changed while it was copied (its mtime moved) is named in a
            // warning; one that did not change gets none.
            (string dir, string src, string quiet, string busy) = QuietAndBusy("changing");

            string dest = Path.Combine(dir, "copy");
            if (merge)
            {
                Directory.CreateDirectory(dest);
            }

            bool renamed = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                "New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse",
                (_, p) =>
                {
                    // The file bar counts files; busy/ is the second half of the tree (created, so listed, after quiet/).
                    if (!renamed && p.ParentActivityId >= 0 && p.PercentComplete is >= 60 and < 95)
                    {
                        renamed = true;
                        File.Move(Path.Combine(busy, "f000"), Path.Combine(busy, "moved")); // copied already: no error says anything
                    }
                },
                ("s", src),
                ("d", dest));
            Assert.True(renamed, "no progress record came while busy/ was copied");
            Assert.Empty(r.Errors);
            string warning = Assert.Single(r.Warnings).Message;
            Assert.Contains($"'{busy}' changed while it was copied", warning, StringComparison.Ordinal);
            Assert.DoesNotContain(quiet, warning, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ASourceDirectoryIsLookedAtAgainByItsDescriptorNotByItsName()
        {
            // Before: leaving a directory, the copy looked at its path again (lstat): a directory renamed away and
            // replaced by another of its name mid-copy was reported as changed, though the one that was read and
            // copied had not (the walk never re-resolves a path it classified). Now the directory that was read
            // is looked at through its open descriptor: only its parent, whose names did change, is named.
            (string dir, string src, _, string busy) = QuietAndBusy("swapped");

            string[] before = FileFacts.Listing(busy);
            bool swapped = false;
            PwshResult r = Pwsh.RunWithProgressHook(
                "New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse",
                (_, p) =>
                {
                    if (!swapped && p.ParentActivityId >= 0 && p.PercentComplete is >= 60 and < 95)
                    {
                        swapped = true;
                        Directory.Move(busy, busy + "-away");
                        Directory.CreateDirectory(busy);
                    }
                },
                ("s", src),
                ("d", Path.Combine(dir, "copy")));
            Assert.True(swapped, "no progress record came while busy/ was copied");
            Assert.Empty(r.Errors);
            string warning = Assert.Single(r.Warnings).Message;
            Assert.Contains($"'{src}' changed while it was copied", warning, StringComparison.Ordinal);
            Assert.DoesNotContain(busy, warning, StringComparison.Ordinal);
            Assert.Equal(before.Length, Directory.GetFiles(Path.Combine(dir, "copy", "busy")).Length);
        }

        [SkippableFact]
        public void SeveralSourcesGoOnlyIntoAnExistingDirectoryAsWithCp()
        {
            // Before: with a destination that did not exist, the first source took its name and the others were
            // copied inside it (trees) or refused as existing (files): several sources merged into one tree.
            string dir = fs.NewDirectory(TestFs.Btrfs, "several");
            string a = Directory.CreateDirectory(Path.Combine(dir, "a")).FullName, b = Directory.CreateDirectory(Path.Combine(dir, "-b")).FullName;
            FileBuilder.WriteNew(Path.Combine(a, "fa"), FileBuilder.RandomBytes(8192, 1));
            FileBuilder.WriteNew(Path.Combine(b, "fb"), FileBuilder.RandomBytes(8192, 2));
            string f1 = Path.Combine(dir, "f1"), f2 = Path.Combine(dir, "f2");
            FileBuilder.WriteNew(f1, FileBuilder.RandomBytes(8192, 3));
            FileBuilder.WriteNew(f2, FileBuilder.RandomBytes(8192, 4));

            string trees = Path.Combine(dir, "trees");
            PwshResult t = Clone("New-BtrfsReflink -LiteralPath $a, $b -Destination $d -Recurse", ("a", a), ("b", b), ("d", trees));
            var error = Assert.Single(t.Errors);
            Assert.StartsWith("DestinationNotADirectory,", error.FullyQualifiedErrorId, StringComparison.Ordinal);
            Assert.Equal(b, error.TargetObject);
            Assert.Equal(new[] { "fa" }, FileFacts.Listing(trees));

            string file = Path.Combine(dir, "file");
            PwshResult f = Clone("Get-Item -LiteralPath $x, $y | New-BtrfsReflink -Destination $d", ("x", f1), ("y", f2), ("d", file));
            Assert.StartsWith("DestinationNotADirectory,", Assert.Single(f.Errors).FullyQualifiedErrorId, StringComparison.Ordinal);
            Assert.Equal(FileFacts.Hash(f1), FileFacts.Hash(file));

            // Into an existing directory, each goes in under its own name.
            string into = Directory.CreateDirectory(Path.Combine(dir, "into")).FullName;
            PwshResult ok = Clone("New-BtrfsReflink -LiteralPath $a, $b, $x -Destination $d -Recurse", ("a", a), ("b", b), ("x", f1), ("d", into));
            Assert.Empty(ok.Errors);
            Assert.Equal(new[] { "-b", "a", "f1" }, FileFacts.Listing(into));

            // A destination ending with '/' is a directory to copy into: one that does not exist, or a file, is said to be
            // no directory (before: "the path is longer than the 4,095 bytes the kernel accepts"; a hostile test).
            string[] listing = FileFacts.Listing(dir);
            foreach ((string destination, string says) in new[] { (Path.Combine(dir, "newdir") + "/", "does not exist"), (f2 + "/", "is not a directory") })
            {
                PwshResult slash = Clone("New-BtrfsReflink -LiteralPath $x -Destination $d", ("x", f1), ("d", destination));
                ErrorRecord e = Assert.Single(slash.Errors);
                Assert.StartsWith("DestinationNotADirectory,", e.FullyQualifiedErrorId, StringComparison.Ordinal);
                Assert.Contains($"a destination that ends with '/' is a directory to copy into, and '{destination.TrimEnd('/')}' {says}", e.Exception.Message, StringComparison.Ordinal);
            }

            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void PassThruStreamsEachFileAlreadyInPlaceAndAnExistingDestinationIsMergedIntoFileByFile()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "passthru");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src", "sub")).Parent!.FullName;
            FileBuilder.Chunks(Path.Combine(src, "a.img"), 2, 65536, 65536, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "sub", "b.img"), 2, 65536, 65536, seed: 2);
            string dest = Path.Combine(dir, "copy");

            // Each object names a file that exists when the object arrives (the tree is built in place).
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -PassThru | ForEach-Object { '{0}|{1}' -f $_.Path, (Test-Path -LiteralPath $_.Path) }", ("s", src), ("d", dest));
            Assert.Empty(r.Errors);
            Assert.Equal(
                new[] { Path.Combine(dest, "a.img") + "|True", Path.Combine(dest, "sub", "b.img") + "|True" },
                r.Output.Select(o => o.ToString()).Order(StringComparer.Ordinal));
            Assert.Equal(2L << 16, Assert.Single(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -PassThru -Include a.img -Force", ("s", src), ("d", dest)).Objects<ReflinkResult>()).SharedBytes);

            // Into an existing directory: merged, each file whole under its name; one tree result.
            string existing = Directory.CreateDirectory(Path.Combine(dir, "existing", "src")).Parent!.FullName;
            File.WriteAllText(Path.Combine(existing, "src", "keep.txt"), "mine");
            ReflinkTreeResult tree = Assert.Single(Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", existing)).Objects<ReflinkTreeResult>());
            Assert.Equal((2L, false), (tree.Files, tree.AppearedWhole));
            Assert.Equal(new[] { "a.img", "keep.txt", "sub" }, FileFacts.Listing(Path.Combine(existing, "src")));
        }

        [SkippableFact]
        public void MergingOverADirectoryOrALinkWhereTheSourceHasAFileSaysSoAndLeavesThem()
        {
            // Before: the advice for a path given to read ("Pass the regular files inside it instead", "if that is the file
            // you mean, give its path instead"), which a tree's destination the user never named cannot follow. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "mergeclash");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            FileBuilder.Chunks(Path.Combine(src, "afile"), 1, 8192, 8192, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "cfile"), 1, 8192, 8192, seed: 2);
            FileBuilder.Chunks(Path.Combine(src, "ok"), 1, 8192, 8192, seed: 3);
            string into = Directory.CreateDirectory(Path.Combine(dir, "into", "src", "afile")).Parent!.Parent!.FullName;
            File.WriteAllText(Path.Combine(into, "src", "afile", "inside"), "mine");
            string target = Path.Combine(dir, "elsewhere");
            File.WriteAllText(target, "theirs");
            File.CreateSymbolicLink(Path.Combine(into, "src", "cfile"), target);

            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", into));
            Expect.ErrorSaying(r, "NewBtrfsReflinkCommand", Path.Combine(into, "src", "afile"), "PathIsDirectory", ErrorCategory.InvalidArgument, "is a directory, and a directory is never replaced by a file", "remove or rename it");
            Expect.ErrorSaying(r, "NewBtrfsReflinkCommand", Path.Combine(into, "src", "cfile"), "PathIsSymbolicLink", ErrorCategory.InvalidArgument, $"it is a symbolic link (to '{target}'), and a link is never followed or replaced here", "remove it to copy the file there");
            Assert.All(r.Errors, e => Assert.DoesNotContain("instead", e.Exception.Message, StringComparison.Ordinal));
            Assert.Equal("mine", File.ReadAllText(Path.Combine(into, "src", "afile", "inside")));
            Assert.Equal("theirs", File.ReadAllText(target));
            Assert.Equal(FileFacts.Hash(Path.Combine(src, "ok")), FileFacts.Hash(Path.Combine(into, "src", "ok")));
        }

        /// <summary>A source tree of <paramref name="count"/> small files (a third of them in sub) and a copy of it whose files then hold other bytes.</summary>
        private static (string Src, string Into, List<string> Sources, List<string> Targets) TreeAndAnOlderCopy(string dir, int count, int seed)
        {
            string src = Directory.CreateDirectory(Path.Combine(dir, "src", "sub")).Parent!.FullName;
            var sources = Enumerable.Range(1, count).Select(i => Path.Combine(src, i % 3 == 0 ? "sub" : string.Empty, $"f{i:D2}")).ToList();
            string into = Directory.CreateDirectory(Path.Combine(dir, "into", "src", "sub")).Parent!.Parent!.FullName;
            var targets = sources.ConvertAll(f => Path.Combine(into, "src", Path.GetRelativePath(src, f)));
            for (int i = 0; i < count; i++)
            {
                FileBuilder.Chunks(sources[i], 2, 16 * 1024, 32 * 1024, fsyncEach: false, seed: seed + i);
                FileBuilder.Chunks(targets[i], 1, 8 * 1024, 8 * 1024, fsyncEach: false, seed: seed + 1000 + i);
            }

            return (src, into, sources, targets);
        }

        [SkippableFact]
        public void AForcedCopyOfATreeReplacesEachFileWhileEarlierGracesRunAndRefusesOnlyTheOneInUse()
        {
            // A replaced file keeps its old inode under a hidden name and a lease for 50 ms; in a tree those graces
            // now run on a thread of their own while the next files are cloned (before: about 55 ms a file, 300
            // files 16 s). The file in use is still refused with its own error, every other file is the source's
            // copy under its name, and nothing hidden is left. Two names of one old file, and a source file that is
            // another name of a file the run replaces, are each opened only once the replacement before has settled:
            // opening a file in its grace would break the lease that guards it (the run refusing its own files).
            string dir = fs.NewDirectory(TestFs.Btrfs, "forcedtree");
            (string src, string into, List<string> sources, List<string> targets) = TreeAndAnOlderCopy(dir, 45, seed: 40);
            File.Delete(targets[4]);
            Shell.Run("ln", targets[3], targets[4]); // f04 and f05 of the old copy: one file
            File.Delete(sources[9]);
            Shell.Run("ln", targets[43], sources[9]); // the source's f10 (now walked last) is the old copy's f44 (walked just before)

            var hashes = sources.ToDictionary(f => f, FileFacts.Hash);
            var inodes = targets.ToDictionary(f => f, f => FileFacts.Stamp(f).Split(' ')[3]);
            string held = targets[20];
            string[] top = FileFacts.Listing(Path.Combine(into, "src")), sub = FileFacts.Listing(Path.Combine(into, "src", "sub"));
            using ChildProcess holder = ChildProcess.HoldingOpen(held);
            FileFacts heldBefore = FileFacts.Of(held);

            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", into));

            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileInUse,Btrfs.Commands.NewBtrfsReflinkCommand", e.FullyQualifiedErrorId);
            Assert.Equal(held, e.TargetObject);
            Assert.Equal(heldBefore, FileFacts.Of(held));
            Assert.Contains(r.Warnings, w => w.Message.Contains($"'{targets[3]}' has 2 hard links", StringComparison.Ordinal));
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((44L, 1L), (tree.Files, tree.Errors));
            for (int i = 0; i < targets.Count; i++)
            {
                if (targets[i] != held)
                {
                    Assert.Equal(hashes[sources[i]], FileFacts.Hash(targets[i]));
                    Assert.NotEqual(inodes[targets[i]], FileFacts.Stamp(targets[i]).Split(' ')[3]);
                }
            }

            Assert.Equal(top, FileFacts.Listing(Path.Combine(into, "src")));
            Assert.Equal(sub, FileFacts.Listing(Path.Combine(into, "src", "sub")));
        }

        [SkippableFact]
        public void AnOpenerOfReplacedFilesInTheirGraceGetsTheOriginalsBackAndEachIsAnErrorCountedInTheTree()
        {
            // The graces overlap the next files: a replacement undone in its grace (someone opened the old file under its
            // hidden name, or the new copy before the exchange) is still that file's error, counted in the tree's Errors,
            // and the file keeps its old bytes; every other file is the source's copy (a review: no test reached it).
            string dir = fs.NewDirectory(TestFs.Btrfs, "graceopener");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            string into = Directory.CreateDirectory(Path.Combine(dir, "into", "src")).Parent!.FullName;
            var sources = Enumerable.Range(1, 40).Select(i => Path.Combine(src, $"f{i:D2}")).ToList();
            var targets = sources.ConvertAll(f => Path.Combine(into, "src", Path.GetFileName(f)));
            for (int i = 0; i < sources.Count; i++)
            {
                FileBuilder.Chunks(sources[i], 1, 16 * 1024, 16 * 1024, fsyncEach: false, seed: 900 + i);
                FileBuilder.Chunks(targets[i], 1, 8 * 1024, 8 * 1024, fsyncEach: false, seed: 1900 + i);
            }

            var old = targets.ToDictionary(f => f, FileFacts.Hash);
            PwshResult r;
            using (ChildProcess.OpeningHiddenNames(Path.Combine(into, "src")))
            {
                r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force", ("s", src), ("d", into));
            }

            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal(40L, tree.Files + tree.Errors);
            Assert.Equal(tree.Errors, r.Errors.Count);
            Assert.All(r.Errors, e => Assert.Equal("FileInUse,Btrfs.Commands.NewBtrfsReflinkCommand", e.FullyQualifiedErrorId));
            var refused = r.Errors.Select(e => (string)e.TargetObject).ToHashSet(StringComparer.Ordinal);
            for (int i = 0; i < targets.Count; i++)
            {
                Assert.Equal(refused.Contains(targets[i]) ? old[targets[i]] : FileFacts.Hash(sources[i]), FileFacts.Hash(targets[i]));
            }

            // A hidden name left is one an error names (the copy someone opened is kept for them, and said).
            foreach (string hidden in FileFacts.Listing(Path.Combine(into, "src")).Where(n => n.StartsWith('.')))
            {
                Assert.Contains(r.Errors, e => e.Exception.Message.Contains(hidden, StringComparison.Ordinal));
            }
        }

        [SkippableFact]
        public void AForcedCopyWithPreserveGivesEachDirectoryItsSourcesTimesAfterItsLastFileSettled()
        {
            // -Preserve sets a directory's times when the walk leaves it; the hidden names of its files still in their
            // grace go before that, or their removal would move its modification time again.
            string dir = fs.NewDirectory(TestFs.Btrfs, "forcedpreserve");
            (string src, string into, _, _) = TreeAndAnOlderCopy(dir, 30, seed: 80);
            Shell.Run("touch", "-d", "2001-02-03 04:05:06", Path.Combine(src, "sub"), src);

            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force -Preserve", ("s", src), ("d", into));

            Assert.Empty(r.Errors);
            Assert.Equal(30L, Assert.Single(r.Objects<ReflinkTreeResult>()).Files);
            foreach (string d in new[] { src, Path.Combine(src, "sub") })
            {
                string copy = Path.Combine(into, "src", Path.GetRelativePath(src, d));
                Assert.Equal(Shell.Run("stat", "-c", "%Y", d).Trim(), Shell.Run("stat", "-c", "%Y", copy).Trim());
            }
        }

        [SkippableFact]
        public void StoppingAForcedCopyOfATreeLeavesEachFileWholeOldOrNewAndNoHiddenName()
        {
            // Ctrl+C while earlier files are in their grace: the run ends once those graces are over, and each file
            // is the old one or the source's copy, byte for byte, under its name.
            string dir = fs.NewDirectory(TestFs.Btrfs, "forcedstop");
            (string src, string into, List<string> sources, List<string> targets) = TreeAndAnOlderCopy(dir, 60, seed: 120);
            var old = targets.ToDictionary(f => f, FileFacts.Hash);
            string[] top = FileFacts.Listing(Path.Combine(into, "src")), sub = FileFacts.Listing(Path.Combine(into, "src", "sub"));
            foreach (int stopAt in new[] { 5, 20, 40 })
            {
                int records = 0;
                PwshResult r = Pwsh.RunWithProgressHook(
                    "New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Force",
                    (ps, p) =>
                    {
                        if (++records == stopAt)
                        {
                            ps.BeginStop(null, null); // what Ctrl+C does
                        }
                    },
                    ("s", src),
                    ("d", into));

                Assert.True(r.Stopped);
                Assert.Empty(r.Errors);
                int replaced = 0;
                for (int i = 0; i < targets.Count; i++)
                {
                    string now = FileFacts.Hash(targets[i]);
                    Assert.True(now == old[targets[i]] || now == FileFacts.Hash(sources[i]), targets[i]);
                    replaced += now == old[targets[i]] ? 0 : 1;
                }

                Assert.InRange(replaced, 1, targets.Count - 1);
                Assert.Equal(top, FileFacts.Listing(Path.Combine(into, "src")));
                Assert.Equal(sub, FileFacts.Listing(Path.Combine(into, "src", "sub")));
                for (int i = 0; i < targets.Count; i++)
                {
                    FileBuilder.Chunks(targets[i], 1, 8 * 1024, 8 * 1024, fsyncEach: false, seed: 120 + 1000 + i); // old again, for the next round
                }
            }
        }

        [SkippableFact]
        public void MergingIntoATreeWithAReadOnlySnapshotInItCopiesEverythingElse()
        {
            // The destination's read-only subvolume refuses the files headed there, each one, and the rest of the source
            // tree is still copied (a review caught a change that stopped the whole walk at the first such file: the
            // refusal is the destination's, not the walked tree's).
            using ExtraFileSystem x = fs.NewFileSystem("btrfs", "256M");
            string src = Path.Combine(x.MountPoint, "src");
            foreach (string sub in new[] { "ro", "rw" })
            {
                Directory.CreateDirectory(Path.Combine(src, sub));
                FileBuilder.Chunks(Path.Combine(src, sub, sub + ".img"), 1, 65536, 65536, seed: 3);
            }

            string into = Directory.CreateDirectory(Path.Combine(x.MountPoint, "into", "src")).Parent!.FullName;
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(into, "src", "ro"));
            Shell.Run("btrfs", "property", "set", Path.Combine(into, "src", "ro"), "ro", "true");
            PwshResult r = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", into));
            Assert.Equal("ReadOnlySnapshot", Assert.Single(r.ErrorIds));
            Assert.True(File.Exists(Path.Combine(into, "src", "rw", "rw.img")), string.Join(" / ", r.Errors));
            Assert.Empty(FileFacts.Listing(Path.Combine(into, "src", "ro")));
        }

        [SkippableFact]
        public void RecurseGoesOnPastAFileItCannotRead()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "treeperm");
            string src = Directory.CreateDirectory(Path.Combine(dir, "src")).FullName;
            FileBuilder.Chunks(Path.Combine(src, "ok1.img"), 1, 4096, 4096, seed: 1);
            FileBuilder.Chunks(Path.Combine(src, "secret.img"), 1, 4096, 4096, seed: 2);
            FileBuilder.Chunks(Path.Combine(src, "ok2.img"), 1, 4096, 4096, seed: 3);
            string dst = Directory.CreateDirectory(Path.Combine(dir, "dst")).FullName;
            Shell.Run("chown", "-R", "nobody", src, dst);
            Shell.Run("chown", "root", Path.Combine(src, "secret.img"));
            Shell.Run("chmod", "0600", Path.Combine(src, "secret.img"));
            PwshResult r;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Clone("New-BtrfsReflink $s $d -Recurse", ("s", src), ("d", dst));
            }

            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("AccessDenied", e.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Equal(Path.Combine(src, "secret.img"), e.TargetObject);
            ReflinkTreeResult tree = Assert.Single(r.Objects<ReflinkTreeResult>());
            Assert.Equal((2L, 1L), (tree.Files, tree.Errors)); // the tree appears with what could be copied
            Assert.False(File.Exists(Path.Combine(dst, "src", "secret.img")));
            Assert.Equal(new[] { "ok1.img", "ok2.img" }, FileFacts.Listing(Path.Combine(dst, "src")));
        }

        [SkippableFact]
        public void OtherFilesystemsAndNoReflinkAreClearErrorsAndFallbackCopyCopies()
        {
            string src = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "cross"), "vm.img");
            FileBuilder.Chunks(src, 2, 65536, 65536);
            string xfsDir = fs.NewDirectory(TestFs.Xfs, "cross");
            string[] xfsBefore = FileFacts.Listing(xfsDir);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", src), ("d", xfsDir)), "NewBtrfsReflinkCommand", Path.Combine(xfsDir, "vm.img"), "ReflinkAcrossFileSystems", ErrorCategory.InvalidOperation, "different filesystems", "-Fallback Copy");
            Assert.Equal(xfsBefore, FileFacts.Listing(xfsDir));
            ReflinkResult copied = Assert.Single(Clone("New-BtrfsReflink $s $d -Fallback Copy", ("s", src), ("d", xfsDir)).Objects<ReflinkResult>());
            Assert.Equal(ReflinkMethod.Copy, copied.Method);
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(copied.Path));

            string ext4 = fs.NewDirectory(TestFs.Ext4, "noreflink");
            string e4 = Path.Combine(ext4, "a.img");
            FileBuilder.Chunks(e4, 2, 65536, 65536);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", e4), ("d", Path.Combine(ext4, "b.img"))), "NewBtrfsReflinkCommand", Path.Combine(ext4, "b.img"), "ReflinkNotSupported", ErrorCategory.NotImplemented, "ext4 cannot share extents");
            Assert.Equal(new[] { "a.img" }, FileFacts.Listing(ext4));

            string tmpfs = fs.NewDirectory(TestFs.Tmpfs, "noreflink");
            string t = Path.Combine(tmpfs, "a.img");
            FileBuilder.Chunks(t, 1, 4096, 4096);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", t), ("d", Path.Combine(tmpfs, "b.img"))), "NewBtrfsReflinkCommand", Path.Combine(tmpfs, "b.img"), "ReflinkNotSupported", ErrorCategory.NotImplemented, "tmpfs cannot share extents");
            Assert.Equal(new[] { "a.img" }, FileFacts.Listing(tmpfs));

            using ExtraFileSystem plainXfs = fs.NewFileSystem("xfs-noreflink", "320M");
            string x = Path.Combine(plainXfs.MountPoint, "a.img");
            FileBuilder.Chunks(x, 2, 65536, 65536);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", x), ("d", Path.Combine(plainXfs.MountPoint, "b.img"))), "NewBtrfsReflinkCommand", Path.Combine(plainXfs.MountPoint, "b.img"), "ReflinkNotSupported", ErrorCategory.NotImplemented, "reflink=1");
            Assert.Equal(new[] { "a.img" }, FileFacts.Listing(plainXfs.MountPoint));
        }

        [SkippableFact]
        public void ATreeToAFileSystemThatRefusesClonesIsOneErrorAndNoTree()
        {
            // Found by a hostile review: an error per file, "Files 0", and an empty tree of directories appeared
            // (which a retry with -Fallback Copy then merged into, instead of the tree appearing whole).
            string ext4 = fs.NewDirectory(TestFs.Ext4, "tree-refused");
            Directory.CreateDirectory(Path.Combine(ext4, "t", "sub"));
            FileBuilder.WriteNew(Path.Combine(ext4, "t", "a"), FileBuilder.RandomBytes(4096, 1));
            FileBuilder.WriteNew(Path.Combine(ext4, "t", "sub", "c"), FileBuilder.RandomBytes(4096, 2));
            string[] before = FileFacts.Listing(ext4);
            PwshResult same = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", Path.Combine(ext4, "t")), ("d", Path.Combine(ext4, "t2")));
            Assert.Equal(new[] { "ReflinkNotSupported" }, same.ErrorIds);
            Assert.StartsWith(Path.Combine(ext4, "t2") + "/", (string)same.Errors[0].TargetObject, StringComparison.Ordinal); // the first file the walk came to, by its name in the copy
            Assert.Contains($"The other files below '{Path.Combine(ext4, "t")}' are on the same filesystem: they are not walked. Nothing was created.", same.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Empty(same.Output);
            Assert.Equal(before, FileFacts.Listing(ext4));

            string src = fs.NewDirectory(TestFs.Btrfs, "tree-refused");
            Directory.CreateDirectory(Path.Combine(src, "sub", "deep"));
            FileBuilder.WriteNew(Path.Combine(src, "sub", "deep", "x"), FileBuilder.RandomBytes(4096, 3));
            FileBuilder.WriteNew(Path.Combine(src, "y"), FileBuilder.RandomBytes(4096, 4));
            string xfs = fs.NewDirectory(TestFs.Xfs, "tree-refused");
            PwshResult across = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse", ("s", src), ("d", Path.Combine(xfs, "x1")));
            Assert.Equal(new[] { "ReflinkAcrossFileSystems" }, across.ErrorIds);
            Assert.Empty(FileFacts.Listing(xfs));

            // -Fallback Copy then makes the tree, whole.
            PwshResult copied = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Fallback Copy", ("s", src), ("d", Path.Combine(xfs, "x1")));
            Assert.Empty(copied.Errors);
            Assert.Equal(FileFacts.Hash(Path.Combine(src, "sub", "deep", "x")), FileFacts.Hash(Path.Combine(xfs, "x1", "sub", "deep", "x")));
        }

        [SkippableFact]
        public void FallbackCopyCopiesANoCowImageToAFileSystemWithoutNoCowWithAWarning()
        {
            // Found by a hostile review: the copy of a NOCOW image to xfs, ext4 or tmpfs failed (FS_IOC_SETFLAGS:
            // EOPNOTSUPP) and nothing was created, so a tree backed up with -Fallback Copy lacked exactly the VM images.
            string dir = fs.NewDirectory(TestFs.Btrfs, "nocow-away");
            string images = Path.Combine(dir, "images");
            Directory.CreateDirectory(images);
            Shell.Run("chattr", "+C", images);
            string src = Path.Combine(images, "vm.img");
            FileBuilder.Chunks(src, 2, 65536, 65536);
            Assert.True(Expect.NoCow(src).IsNoCow);
            foreach (TestFs kind in new[] { TestFs.Xfs, TestFs.Ext4, TestFs.Tmpfs })
            {
                string to = fs.NewDirectory(kind, "nocow-away");
                PwshResult one = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Fallback Copy", ("s", src), ("d", to));
                Assert.Empty(one.Errors);
                ReflinkResult copied = Assert.Single(one.Objects<ReflinkResult>());
                Assert.Equal((ReflinkMethod.Copy, FileFacts.Hash(src)), (copied.Method, FileFacts.Hash(copied.Path)));
                Assert.Contains(one.Warnings, w => w.Message.Contains("is not NOCOW like its source", StringComparison.Ordinal) && w.Message.Contains("has no NOCOW attribute", StringComparison.Ordinal));

                // In a tree, the image is there too.
                PwshResult tree = Clone("New-BtrfsReflink -LiteralPath $s -Destination $d -Recurse -Fallback Copy", ("s", dir), ("d", Path.Combine(to, "backup")));
                Assert.Empty(tree.Errors);
                Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(Path.Combine(to, "backup", "images", "vm.img")));
            }
        }

        [SkippableFact]
        public void ACopyToXfsOfAFileWithManyHolesTakesTheSpaceOfItsDataOnly()
        {
            // Before: -Fallback Copy wrote the data in order with the file growing as it went, and xfs's speculative
            // preallocation past the end filled every hole with unwritten extents: a file with 8 MiB of data in 4 KiB
            // pieces every 8 KiB took 16 MiB on xfs. Found by a hostile review.
            string src = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "holed-copy"), "vm.img");
            FileBuilder.Chunks(src, 2048, 4096, 8192, seed: 80);
            string xfsDir = fs.NewDirectory(TestFs.Xfs, "holed-copy");
            ReflinkResult copied = Assert.Single(Clone("New-BtrfsReflink $s $d -Fallback Copy", ("s", src), ("d", xfsDir)).Objects<ReflinkResult>());
            Assert.Equal(ReflinkMethod.Copy, copied.Method);
            Assert.Equal(FileFacts.Hash(src), FileFacts.Hash(copied.Path));
            long allocated = long.Parse(Shell.Run("stat", "-c", "%b", copied.Path).Trim(), System.Globalization.CultureInfo.InvariantCulture) * 512;
            Assert.True(allocated <= (9L << 20), $"{allocated} bytes allocated for 8 MiB of data");
            Assert.DoesNotContain(Filefrag.Extents(copied.Path), e => e.Flags.Contains("unwritten"));

            // -WhatIf names what the copy costs: the data, not the file's size (before: "(16.0 MiB)" for 8 MiB of data).
            PwshResult preview = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Fallback Copy -WhatIf", captureHost: true, variables: new Dictionary<string, object?> { ["s"] = src, ["d"] = Path.Combine(xfsDir, "never.img") });
            Assert.Empty(preview.Errors);
            Assert.Contains("(8.00 MiB of data, holes skipped; file size 16.0 MiB)", preview.HostText.Replace("\n", " ", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(xfsDir, "never.img")));
        }

        [SkippableFact]
        public void RefusalsForSourcesAndDestinationsLeaveNothingBehind()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "refuse");
            string src = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(src, 2, 65536, 65536);
            string sub = Directory.CreateDirectory(Path.Combine(dir, "sub")).FullName;
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", sub), ("d", Path.Combine(dir, "x"))), "NewBtrfsReflinkCommand", sub, "PathIsDirectory", ErrorCategory.InvalidArgument, "-Recurse");

            foreach ((string attr, string id) in new[] { ("+i", "FileIsImmutable"), ("+a", "FileIsAppendOnly") })
            {
                string dst = Path.Combine(dir, $"locked{attr[1]}.img");
                FileBuilder.Chunks(dst, 1, 4096, 4096);
                Shell.Run("chattr", attr, dst);
                try
                {
                    FileFacts before = FileFacts.Of(dst);
                    Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Force", ("s", src), ("d", dst)), "NewBtrfsReflinkCommand", dst, id, ErrorCategory.PermissionDenied);
                    Assert.Equal(before, FileFacts.Of(dst));
                }
                finally
                {
                    Shell.Run("chattr", "-i", "-a", dst);
                }
            }

            using (var swap = new ActiveSwapfile(fs.NewDirectory(TestFs.Btrfs, "swapsrc")))
            {
                string to = Path.Combine(dir, "swapcopy");
                Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", swap.Path), ("d", to)), "NewBtrfsReflinkCommand", swap.Path, "FileIsActiveSwapfile", ErrorCategory.ResourceBusy, "swapoff");
                Assert.False(File.Exists(to));
            }

            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", sv, Path.Combine(dir, "snap"));
            string intoSnapshot = Path.Combine(dir, "snap", "vm.img");
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", src), ("d", intoSnapshot)), "NewBtrfsReflinkCommand", Path.Combine(dir, "snap"), "ReadOnlySnapshot", ErrorCategory.PermissionDenied);

            string closed = Directory.CreateDirectory(Path.Combine(dir, "closed")).FullName;
            Shell.Run("chmod", "0755", closed);
            PwshResult r;
            using (FsUid.Become(FsUid.Nobody))
            {
                r = Clone("New-BtrfsReflink $s $d", ("s", src), ("d", closed));
            }

            Assert.Equal("AccessDenied", Assert.Single(r.Errors).FullyQualifiedErrorId.Split(',')[0]);
            Assert.Empty(FileFacts.Listing(closed));
        }

        [SkippableFact]
        public void AReadOnlyMountAndTooLittleSpaceForACopyAreRefused()
        {
            using ExtraFileSystem ro = fs.NewFileSystem("btrfs", "256M");
            string src = Path.Combine(ro.MountPoint, "a.img");
            FileBuilder.Chunks(src, 2, 65536, 65536);
            ro.Remount(readOnly: true);
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d", ("s", src), ("d", Path.Combine(ro.MountPoint, "b.img"))), "NewBtrfsReflinkCommand", ro.MountPoint, "ReadOnlyFileSystem", ErrorCategory.PermissionDenied, "read-only");

            using ExtraFileSystem small = fs.NewFileSystem("ext4", "64M");
            string big = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "big"), "big.img");
            FileBuilder.Chunks(big, 80, 1 << 20, 1 << 20, fsyncEach: false);
            string to = Path.Combine(small.MountPoint, "big.img");
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Fallback Copy", ("s", big), ("d", to)), "NewBtrfsReflinkCommand", to, "InsufficientSpace", ErrorCategory.ResourceUnavailable, "needs 80.0 MiB");
            Assert.False(File.Exists(to));

            // Space preallocated past the source's end is preallocated again in the copy, so it counts (before: 1 MiB
            // of data with 60 MiB preallocated past it passed the check, and the copy ran out of space at once).
            string prealloc = Path.Combine(Path.GetDirectoryName(big)!, "db.img");
            FileBuilder.WriteNew(prealloc, FileBuilder.RandomBytes(1 << 20, 5));
            Shell.Run("fallocate", "-n", "-o", "1M", "-l", "60M", prealloc);
            string to2 = Path.Combine(small.MountPoint, "db.img");
            Expect.ErrorSaying(Clone("New-BtrfsReflink $s $d -Fallback Copy", ("s", prealloc), ("d", to2)), "NewBtrfsReflinkCommand", to2, "InsufficientSpace", ErrorCategory.ResourceUnavailable, "needs 61.0 MiB (60.0 MiB of it preallocated past the end of the file, as the source has it)");
            Assert.False(File.Exists(to2));

            // Where it fits, -WhatIf says it as the conversions do (a hostile review: the preview left it out).
            string fits = Path.Combine(Path.GetDirectoryName(big)!, "fits.img");
            FileBuilder.WriteNew(fits, FileBuilder.RandomBytes(1 << 20, 6));
            Shell.Run("fallocate", "-n", "-o", "1M", "-l", "20M", fits);
            PwshResult preview = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d -Fallback Copy -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["s"] = fits, ["d"] = Path.Combine(small.MountPoint, "fits.img") }, captureHost: true);
            Assert.Empty(preview.Errors);
            Assert.Contains("needs 21.0 MiB (20.0 MiB of it preallocated past the end of the file, as the source has it)", preview.HostText.Replace("\n", " ", StringComparison.Ordinal), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ASourceWithManyExtentsGetsAWarningWithItsCount()
        {
            string src = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "many"), "many.img");
            FileBuilder.Chunks(src, 10_050, 4096, 8192, fsyncEach: false);
            Shell.Run("sync");
            PwshResult r = Clone("New-BtrfsReflink $s ($s + '.copy')", ("s", src));
            Assert.Empty(r.Errors);
            Assert.Contains("10,050 extents", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ADestinationNameTooLongIsRefusedBeforeTheCloneAndWithoutAWarning()
        {
            // Before: the clone ran, a "NOCOW like its source" warning was written, and only then did
            // linkat fail with ENAMETOOLONG.
            string dir = fs.NewDirectory(TestFs.Btrfs, "longname");
            string nocow = Directory.CreateDirectory(Path.Combine(dir, "nocow")).FullName;
            Shell.Run("chattr", "+C", nocow);
            string src = Path.Combine(nocow, "vm.img");
            FileBuilder.Chunks(src, 2, 1 << 20, 1 << 20, fsyncEach: false);
            string dest = Path.Combine(dir, new string('n', 300) + ".img");
            string[] listing = FileFacts.Listing(dir);
            PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $s -Destination $d", ("s", src), ("d", dest));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("InvalidArgument,Btrfs.Commands.NewBtrfsReflinkCommand", e.FullyQualifiedErrorId);
            Assert.Contains("304 bytes long in UTF-8 and a file name may have at most 255", e.Exception.Message, StringComparison.Ordinal);
            Assert.Empty(r.Warnings);
            Assert.Equal(listing, FileFacts.Listing(dir));
        }
    }
}
