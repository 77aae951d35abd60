namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Management.Automation.Host;
    using Btrfs.Core;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>ConvertTo-NoCow / ConvertFrom-NoCow on a real btrfs: what a conversion keeps and what it changes.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ConvertNoCowTests(LoopFileSystems fs)
    {
        private const string Yes = " -Confirm:$false";

        private static string Stat(string path, string format) => Shell.Run("stat", "-c", format, path).Trim();

        private static string Xattrs(string path) =>
            string.Join("\n", Shell.Run("getfattr", "-d", "-m", "-", "--absolute-names", "-e", "hex", path).Split('\n').Where(l => !l.StartsWith("# file", StringComparison.Ordinal)));

        /// <summary>A sparse file with data, inner holes and a trailing hole, and every kind of metadata set.</summary>
        private static string RichFile(string dir)
        {
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 8, 256 * 1024, 1024 * 1024);        // 8 × 256 KiB of data, 768 KiB holes between
            using (var f = new FileStream(file, FileMode.Open)) { f.SetLength(16L << 20); } // trailing hole to 16 MiB
            Shell.Run("chown", "1234:5678", file);
            Shell.Run("chmod", "0640", file);
            Shell.Run("setfattr", "-n", "user.origin", "-v", "backup-2026", file);
            Shell.Run("setfacl", "-m", "u:nobody:r", file);
            Shell.Run("chattr", "+d", file); // nodump: a usage flag that must be carried
            Shell.Run("touch", "-m", "-d", "2020-01-02 03:04:05.123456789", file);
            Shell.Run("touch", "-a", "-d", "2021-06-07 08:09:10.5", file);
            return file;
        }

        /// <summary>
        /// <paramref name="count"/> files "fNN" + <paramref name="extension"/> numbered from <paramref name="first"/>, each
        /// two chunks of <paramref name="chunk"/> bytes with a hole of the same size between, different data each.
        /// </summary>
        [SkippableFact]
        public void AConvertedFileAdmitsExactlyWhomItAdmittedNotWhomItsDirectorysDefaultAclWould()
        {
            string dir = Directory.CreateDirectory(Path.Combine(fs.NewDirectory(TestFs.Btrfs, "acl-default"), "d")).FullName;
            Shell.Run("setfacl", "-d", "-m", "u:daemon:rwx", dir);
            string plain = Path.Combine(dir, "plain.img"), own = Path.Combine(dir, "own.img");
            foreach (string f in new[] { plain, own })
            {
                FileBuilder.Chunks(f, 2, 65536, 65536, seed: 31);
                Shell.Run("setfacl", "-b", f);
                Shell.Run("chmod", "0640", f);
            }

            Shell.Run("setfacl", "-m", "u:bin:r,g::-", own);
            string[] before = { Shell.Run("getfacl", "-cp", plain), Shell.Run("getfacl", "-cp", own) };
            Assert.DoesNotContain("daemon", before[0], StringComparison.Ordinal);
            foreach (string command in new[] { "ConvertTo-NoCow", "ConvertFrom-NoCow" })
            {
                Assert.Empty(Pwsh.Run(command + " -LiteralPath $a, $b" + Yes, ("a", plain), ("b", own)).Errors);
                Assert.Equal(before, new[] { Shell.Run("getfacl", "-cp", plain), Shell.Run("getfacl", "-cp", own) });
                Assert.Equal("640", Stat(plain, "%a"));
                Assert.NotEqual(0, Shell.Try("setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "cat", plain).ExitCode);
            }
        }

        [SkippableFact]
        public void AnExtendedAttributeWhoseNameIsNotUtf8IsNeverLostInARewrite()
        {
            // Before: the names were decoded with U+FFFD for bad bytes, the copy found no such attribute and went on
            // without it: 'user.\xff' was gone after a conversion that reported success. Found by a code review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "xattr-not-utf8");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 65536, 65536, seed: 7);
            Shell.Run("bash", "-c", "setfattr -n $'user.\\xff' -v kept \"$0\" && setfattr -n user.plain -v also \"$0\"", file);
            string Attributes() => Shell.Run("bash", "-c", "getfattr -d -m - -e hex --absolute-names \"$0\" | sort", file);
            string attributes = Attributes();
            Assert.Contains("user.", attributes, StringComparison.Ordinal);
            FileFacts before = FileFacts.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Equal("NameNotUtf8", Assert.Single(r.ErrorIds));
            Assert.Contains("\\xff", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Equal(attributes, Attributes());
            Assert.Equal(new[] { "vm.img" }, FileFacts.Listing(dir)); // no temporary file left
        }

        private static List<string> SmallFiles(string dir, int first, int count, string extension, int chunk, int seed)
        {
            var files = Enumerable.Range(first, count).Select(i => Path.Combine(dir, $"f{i:D2}{extension}")).ToList();
            for (int i = 0; i < files.Count; i++)
            {
                FileBuilder.Chunks(files[i], 2, chunk, 2L * chunk, fsyncEach: false, seed: seed + i);
            }

            return files;
        }

        [SkippableFact]
        public void WhereNobodyCanBeAskedEachFileIsAClearErrorAndStaysAsItWas()
        {
            // ConfirmImpact High asks for every file. pwsh -c with its input closed (cron, a CI job) failed at
            // the first question with "Object reference not set to an instance of an object" and stopped.
            string dir = fs.NewDirectory(TestFs.Btrfs, "convert-unasked");
            string[] files = { Path.Combine(dir, "a.img"), Path.Combine(dir, "b.img") };
            foreach (string f in files)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(1 << 20, 5));
            }

            FileFacts[] before = files.Select(FileFacts.Of).ToArray();
            RealPwsh.Result r = RealPwsh.RunWithClosedInput(
                "ConvertTo-NoCow -LiteralPath $a, $b -ErrorVariable e -ErrorAction SilentlyContinue; $e | ForEach-Object { '@@' + $_.FullyQualifiedErrorId + '|' + $_.TargetObject }; '@@after'",
                ("a", files[0]),
                ("b", files[1]));
            string[] ids = r.Marked;
            Assert.True(ids.Length == 3, r.StdOut + r.StdErr);
            Assert.StartsWith("ConfirmationNotPossible,", ids[0], StringComparison.Ordinal);
            Assert.EndsWith("|" + files[0], ids[0], StringComparison.Ordinal);
            Assert.StartsWith("ConfirmationNotPossible,", ids[1], StringComparison.Ordinal);
            Assert.EndsWith("|" + files[1], ids[1], StringComparison.Ordinal);
            Assert.Equal("after", ids[2]);
            Assert.Equal(before, files.Select(FileFacts.Of).ToArray());
            Assert.Equal(new[] { "a.img", "b.img" }, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void AHostThatCannotAskIsAskedOnceAndAStopAtThePromptStopsTheCommand()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "convert-host-unasked");
            string[] files = { Path.Combine(dir, "a.img"), Path.Combine(dir, "b.img"), Path.Combine(dir, "c.img") };
            foreach (string f in files)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(64 << 10, 6));
            }

            FileFacts[] before = files.Select(FileFacts.Of).ToArray();
            var vars = new Dictionary<string, object?> { ["f"] = files };

            // A host without a user interface: one question, then an error for each file, and no more questions.
            int asked = 0;
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f", vars, answer: (_, _) => { asked++; throw new HostException("this host has no user interface"); });
            Assert.Equal(1, asked);
            Assert.Equal(new[] { "ConfirmationNotPossible", "ConfirmationNotPossible", "ConfirmationNotPossible" }, r.ErrorIds);
            Assert.Equal(files, r.Errors.Select(e => e.TargetObject as string));
            Assert.All(r.Errors, e => Assert.Contains("its host has no way to ask", e.Exception.Message, StringComparison.Ordinal));
            Assert.All(r.Errors, e => Assert.DoesNotContain("this host has no user interface", e.Exception.Message, StringComparison.Ordinal)); // the host's text can quote another file's question
            Assert.All(r.Errors, e => Assert.IsType<HostException>(e.Exception.InnerException));

            // Ctrl+C at the prompt, as a host says it (PromptingException, OperationStopped): the command stops,
            // the next file is not asked about, nothing is an error of ours.
            asked = 0;
            PwshResult s = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f", vars, answer: (_, _) => { asked++; throw new PromptingException("stopped at the prompt", null, "PromptForChoiceCanceled", ErrorCategory.OperationStopped); });
            Assert.Equal(1, asked);
            Assert.DoesNotContain("ConfirmationNotPossible", s.ErrorIds);
            Assert.Equal(before, files.Select(FileFacts.Of).ToArray());
        }

        [SkippableFact]
        public void TheQuestionAskedSaysWhatStopsBeingSharedAsWhatIfDoes()
        {
            // Found by a newcomer review: -WhatIf said what stops being shared; the confirmation prompt, where the
            // admin decides, did not.
            string dir = fs.NewDirectory(TestFs.Btrfs, "convert-prompt-shared");
            string nocowDir = Path.Combine(dir, "nocow");
            Directory.CreateDirectory(nocowDir);
            Shell.Run("chattr", "+C", nocowDir);
            string cow = Path.Combine(dir, "cow.img"), nocow = Path.Combine(nocowDir, "nocow.img");
            foreach (string f in new[] { cow, nocow })
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(1 << 20, 8));
                Shell.Run("cp", "--reflink=always", f, f + ".backup");
            }

            Shell.Run("sync");
            foreach ((string command, string file) in new[] { ("ConvertTo-NoCow", cow), ("ConvertFrom-NoCow", nocow) })
            {
                FileFacts before = FileFacts.Of(file);
                var asked = new List<string>();
                PwshResult r = Pwsh.Run(command + " -LiteralPath $f", new Dictionary<string, object?> { ["f"] = file }, answer: (_, message) => { asked.Add(message); return 2; });
                Assert.Empty(r.Errors);
                Assert.Contains("1.00 MiB it shares now with reflink copies or snapshots stops being shared", Assert.Single(asked), StringComparison.Ordinal);
                Assert.Equal(before, FileFacts.Of(file));
            }
        }

        [SkippableFact]
        public void ConvertToNoCowKeepsContentHolesSizeModeOwnerTimesXattrsAndAcl()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "keep");
            string file = RichFile(dir);
            string hash = FileFacts.Hash(file);
            string meta = Stat(file, "%s %a %u %g %X %Y %x %y");
            string xattrs = Xattrs(file);
            string acl = Shell.Run("getfacl", "-c", file);
            string inode = Stat(file, "%i");
            long dataBytes = Filefrag.Extents(file).Sum(e => e.Length);
            Assert.Contains("user.origin", xattrs, StringComparison.Ordinal);
            Assert.Contains("user:nobody:r--", acl, StringComparison.Ordinal);
            string[] listing = FileFacts.Listing(dir);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);

            // Times first: any read of the new inode (whose ctime is new) moves its atime under relatime.
            Assert.Equal(meta, Stat(file, "%s %a %u %g %X %Y %x %y"));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.Equal(xattrs, Xattrs(file));
            Assert.Equal(acl, Shell.Run("getfacl", "-c", file));
            Assert.NotEqual(inode, Stat(file, "%i"));
            string attrs = FileFacts.Attributes(file);
            Assert.Contains('C', attrs);
            Assert.Contains('d', attrs);
            Assert.Equal(listing, FileFacts.Listing(dir)); // nothing left behind

            // Holes stay holes: the same data bytes by filefrag, and blocks allocated for the data only.
            Assert.Equal(dataBytes, Filefrag.Extents(file).Sum(e => e.Length));
            Assert.Equal(8L * 256 * 1024, long.Parse(Stat(file, "%b"), System.Globalization.CultureInfo.InvariantCulture) * 512);

            // And back: ConvertFrom-NoCow clears it, keeping everything again (the reads above moved the atime).
            meta = Stat(file, "%s %a %u %g %X %Y %x %y");
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.DoesNotContain('C', FileFacts.Attributes(file));
            Assert.Contains('d', FileFacts.Attributes(file));
            Assert.Equal(meta, Stat(file, "%s %a %u %g %X %Y %x %y"));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.Equal(acl, Shell.Run("getfacl", "-c", file));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void APreallocatedFileStaysPreallocated()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "prealloc");
            string file = Path.Combine(dir, "disk.raw");
            Shell.Run("fallocate", "-l", "8M", file);
            FileBuilder.WriteAt(file, 1 << 20, FileBuilder.RandomBytes(64 * 1024, 5));
            string hash = FileFacts.Hash(file);
            long unwrittenBefore = Filefrag.Extents(file).Where(e => e.Flags.Contains("unwritten")).Sum(e => e.Length);
            Assert.True(unwrittenBefore > 7 << 20);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(unwrittenBefore, Filefrag.Extents(file).Where(e => e.Flags.Contains("unwritten")).Sum(e => e.Length));
            Assert.Equal(8L << 20, long.Parse(Stat(file, "%b"), System.Globalization.CultureInfo.InvariantCulture) * 512);
        }

        [SkippableFact]
        public void APreallocationPastTheEndStaysThereBothWays()
        {
            // Before: fallocate -n (KEEP_SIZE) past the end was preallocated again in the copy, then dropped by the
            // last ftruncate to the same size (btrfs truncates at i_size): 4 MiB reserved, none kept. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "prealloc-eof");
            string file = Path.Combine(dir, "db.wal");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(100 << 10, 6));
            Shell.Run("fallocate", "-n", "-o", "100K", "-l", "4M", file);
            string hash = FileFacts.Hash(file);
            string blocks = Stat(file, "%b");
            Assert.True(long.Parse(blocks, System.Globalization.CultureInfo.InvariantCulture) * 512 > 4L << 20);
            foreach (string convert in new[] { "ConvertTo-NoCow", "ConvertFrom-NoCow" })
            {
                PwshResult r = Pwsh.Run(convert + " -LiteralPath $f" + Yes, ("f", file));
                Assert.Empty(r.Errors);
                Assert.Equal(convert == "ConvertTo-NoCow", FileFacts.HasNoCow(file));
                Assert.Equal(hash, FileFacts.Hash(file));
                Assert.Equal(100L << 10, new FileInfo(file).Length);
                Assert.Equal(blocks, Stat(file, "%b"));
                Assert.Contains(Filefrag.Extents(file), e => e.Flags.Contains("unwritten") && e.Flags.Contains("eof"));
            }

            // An empty file too: the first ftruncate, to the size it had already (0), dropped it (a review).
            string empty = Path.Combine(dir, "empty.wal");
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            Shell.Run("fallocate", "-n", "-l", "4M", empty);
            string emptyBlocks = Stat(empty, "%b");
            Assert.Equal("8192", emptyBlocks);
            foreach (string convert in new[] { "ConvertTo-NoCow", "ConvertFrom-NoCow" })
            {
                Assert.Empty(Pwsh.Run(convert + " -LiteralPath $f" + Yes, ("f", empty)).Errors);
                Assert.Equal(convert == "ConvertTo-NoCow", FileFacts.HasNoCow(empty));
                Assert.Equal(0L, new FileInfo(empty).Length);
                Assert.Equal(emptyBlocks, Stat(empty, "%b"));
            }
        }

        [SkippableFact]
        public void ASparseOneTebibyteImageCostsWhatItsDataCosts()
        {
            // README's promise: converting a sparse 1 TiB image with 8 KiB of data reads and writes 8 KiB
            // (SEEK_DATA/SEEK_HOLE), keeps its holes and its size. Reading its holes would take hours.
            string dir = fs.NewDirectory(TestFs.Btrfs, "sparse-tib");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Sparse(file, 1L << 40);
            byte[] a = FileBuilder.RandomBytes(4096, 61), b = FileBuilder.RandomBytes(4096, 62);
            FileBuilder.WriteAt(file, 4096, a);
            FileBuilder.WriteAt(file, (1L << 39) + 8192, b);
            Shell.Run("sync");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -PassThru" + Yes, ("f", file));
            double seconds = clock.Elapsed.TotalSeconds;
            Assert.Empty(r.Errors);
            Assert.True(Assert.Single(r.Objects<NoCowStatus>()).IsNoCow);
            Assert.True(seconds < 20, $"{seconds:F1} s for 8 KiB of data");
            Assert.Equal(1L << 40, new FileInfo(file).Length);
            Assert.Equal(8192L, long.Parse(Stat(file, "%b"), System.Globalization.CultureInfo.InvariantCulture) * 512);
            using var f = new FileStream(file, FileMode.Open, FileAccess.Read);
            byte[] got = new byte[4096];
            f.Position = 4096;
            f.ReadExactly(got);
            Assert.Equal(a, got);
            f.Position = (1L << 39) + 8192;
            f.ReadExactly(got);
            Assert.Equal(b, got);
        }

        [SkippableFact]
        public void AFileAlreadyInTheWantedStateIsSkippedNotRewritten()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "already");
            Shell.Run("chattr", "+C", dir);
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 4096);
            string inode = Stat(file, "%i");
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Verbose -PassThru" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Equal(inode, Stat(file, "%i"));
            Assert.Contains(r.Verbose, v => v.Message.Contains("already NOCOW; skipped", StringComparison.Ordinal));
            Assert.True(Assert.Single(r.Objects<NoCowStatus>()).IsNoCow);
        }

        [SkippableFact]
        public void WhatIfSaysWhatItWouldCostAndChangesNothing()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "whatif");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 1 << 20, 2 << 20);
            FileFacts before = FileFacts.Of(file);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file }, captureHost: true);
            Assert.Empty(r.Errors);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Contains("What if:", r.HostText, StringComparison.Ordinal);
            Assert.Contains("Rewrite 4.00 MiB of data (file size 7.00 MiB) into a new NOCOW file", r.HostText, StringComparison.Ordinal);
            Assert.Contains("needs 4.00 MiB of the ", r.HostText, StringComparison.Ordinal);
            Assert.Contains(" free", r.HostText, StringComparison.Ordinal);

            // Preallocated ranges are preallocated again: the cost said is the one the run checks (before: the data
            // alone, 1 MiB, for a file that takes 3 MiB and whose copy takes 3 MiB too). Found by a hostile review.
            string prealloc = Path.Combine(dir, "db.img");
            Shell.Run("fallocate", "-l", "3M", prealloc);
            FileBuilder.WriteAt(prealloc, 0, FileBuilder.RandomBytes(1 << 20, 7));
            PwshResult p = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = prealloc }, captureHost: true);
            Assert.Empty(p.Errors);
            Assert.Contains("Rewrite 1.00 MiB of data (file size 3.00 MiB)", p.HostText, StringComparison.Ordinal);
            Assert.Contains("needs 3.00 MiB of the ", p.HostText, StringComparison.Ordinal);
            File.Delete(prealloc);
            Assert.DoesNotContain("stops being shared", r.HostText, StringComparison.Ordinal);

            // A file that shares its extents with a reflink copy: the preview says the sharing ends (before: nothing).
            Shell.Run("cp", "--reflink=always", file, Path.Combine(dir, "copy.img"));
            Shell.Run("sync");
            PwshResult shared = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -WhatIf", new System.Collections.Generic.Dictionary<string, object?> { ["f"] = file }, captureHost: true);
            Assert.Empty(shared.Errors);
            Assert.Contains("4.00 MiB it shares now with reflink copies or snapshots stops being shared", shared.HostText.Replace("\n", " ", StringComparison.Ordinal), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ProgressHasPercentAParentBarAndCompletedRecords()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "progress");
            string a = Path.Combine(dir, "a.img");
            string b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 1, 48 << 20, 48 << 20, seed: 1);
            FileBuilder.Chunks(b, 1, 8 << 20, 8 << 20, seed: 2);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $a, $b" + Yes, ("a", a), ("b", b));
            Assert.Empty(r.Errors);
            var perFile = r.Progress.Where(p => p.ParentActivityId >= 0).ToList();
            var run = r.Progress.Where(p => p.ParentActivityId < 0).ToList();
            Assert.True(perFile.Count > 10, $"only {perFile.Count} per-file records");
            Assert.All(perFile, p => Assert.Equal(run[0].ActivityId, p.ParentActivityId));
            Assert.Contains(perFile, p => p.PercentComplete is > 0 and < 100);
            Assert.Equal(2, perFile.Count(p => p.RecordType == ProgressRecordType.Completed));
            Assert.Equal(ProgressRecordType.Completed, run[^1].RecordType);
            Assert.Equal(2, run.Count(p => p.RecordType == ProgressRecordType.Processing));
            Assert.True(FileFacts.HasNoCow(a) && FileFacts.HasNoCow(b));
        }

        [SkippableFact]
        public void ADirectoryNeedsRecurseWhichMarksItAndConvertsTheFilesBelow()
        {
            string root = fs.NewDirectory(TestFs.Btrfs, "dir");
            string sub = Directory.CreateDirectory(Path.Combine(root, "sub")).FullName;
            string top = Path.Combine(root, "top.img");
            string deep = Path.Combine(sub, "deep.img");
            FileBuilder.Chunks(top, 2, 4096, 8192, seed: 3);
            FileBuilder.Chunks(deep, 2, 4096, 8192, seed: 4);
            string topHash = FileFacts.Hash(top);
            string deepHash = FileFacts.Hash(deep);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d" + Yes, ("d", root));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("PathIsDirectory,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Contains("-Recurse", e.Exception.Message, StringComparison.Ordinal);
            Assert.False(FileFacts.HasNoCow(root));

            r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse -PassThru" + Yes, ("d", root));
            Assert.Empty(r.Errors);
            Assert.All(new[] { root, sub, top, deep }, p => Assert.True(FileFacts.HasNoCow(p), p));
            Assert.Equal(topHash, FileFacts.Hash(top));
            Assert.Equal(deepHash, FileFacts.Hash(deep));
            Assert.Equal(2, r.Objects<NoCowStatus>().Count(s => s.IsNoCow && s.ItemType == FileItemType.File));

            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $d -Recurse" + Yes, ("d", root));
            Assert.Empty(r.Errors);
            Assert.All(new[] { root, sub, top, deep }, p => Assert.False(FileFacts.HasNoCow(p), p));
            Assert.Equal(topHash, FileFacts.Hash(top));
        }

        [SkippableFact]
        public void AFileThisPowerShellHoldsIsSaidToBeHeldByItNotByDotnet()
        {
            // Before: "it is in use by dotnet (pid N, open)", which a hostile review read as another program's.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "self-held"), "vm.img");
            FileBuilder.WriteNew(file, FileBuilder.RandomBytes(64 << 10, 3));
            PwshResult r = Pwsh.Run("$s = [System.IO.File]::OpenRead($f); try { ConvertTo-NoCow -LiteralPath $f" + Yes + " } finally { $s.Dispose() }", ("f", file));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileInUse,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Contains($"this PowerShell itself (pid {Environment.ProcessId}, open: a file this session still holds", e.Exception.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ManyFilesAreConvertedWhileEarlierGracesRunEachResultInOrderNothingLeftBehind()
        {
            // Each replaced file keeps its old inode under a hidden name and a lease for 50 ms after the
            // exchange; those graces run on a thread of their own while the next files are copied (before:
            // about 60 ms per small file, 50 of them waiting). Results still come in the order of the walk,
            // a file in use is still refused with its own error, and no hidden name is left.
            string dir = fs.NewDirectory(TestFs.Btrfs, "many");
            List<string> files = SmallFiles(dir, 0, 40, ".db", 32 * 1024, seed: 100);

            var hashes = files.ToDictionary(f => f, FileFacts.Hash);
            var inodes = files.ToDictionary(f => f, f => Stat(f, "%i"));
            string held = files[17];
            string[] listing = FileFacts.Listing(dir);
            using ChildProcess holder = ChildProcess.HoldingOpen(held);
            FileFacts heldBefore = FileFacts.Of(held);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse -Verbose" + Yes, ("d", dir));

            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileInUse,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Equal(held, e.TargetObject);
            Assert.Equal(heldBefore, FileFacts.Of(held));
            List<string> converted = r.Verbose.Select(v => System.Text.RegularExpressions.Regex.Match(v.Message, "^'(.*)' is now NOCOW: ")).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
            Assert.Equal(files.Where(f => f != held), converted); // in the order of the walk (the order they were created)
            Assert.All(converted, f =>
            {
                Assert.True(FileFacts.HasNoCow(f), f);
                Assert.Equal(hashes[f], FileFacts.Hash(f));
                Assert.NotEqual(inodes[f], Stat(f, "%i"));
            });
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void StoppingAConversionOfManyFilesLeavesEachWholeUnderItsNameAndNoHiddenName()
        {
            // Ctrl+C while earlier files are in their grace: the run ends once those graces are over, each
            // file is either converted or untouched, byte for byte, and nothing else is in the directory.
            string dir = fs.NewDirectory(TestFs.Btrfs, "manystop");
            List<string> files = SmallFiles(dir, 0, 60, ".db", 32 * 1024, seed: 200); // the last stop comes with a third of them left: room for a late Ctrl+C

            var hashes = files.ToDictionary(f => f, FileFacts.Hash);
            string[] listing = FileFacts.Listing(dir);

            // Stopped at several points, back and forth: any progress record may be the one Ctrl+C lands on,
            // also the one written just after a file's names were exchanged (before: that write threw, and the
            // file in its grace was dropped, its original left under a hidden name).
            bool toNoCow = true;
            foreach (int stopAt in new[] { 7, 20, 33, 46, 59, 72 })
            {
                var inodes = files.ToDictionary(f => f, f => Stat(f, "%i"));
                int records = 0;
                PwshResult r = Pwsh.RunWithProgressHook(
                    (toNoCow ? "ConvertTo-NoCow" : "ConvertFrom-NoCow") + " -LiteralPath $d -Recurse" + Yes,
                    (ps, p) =>
                    {
                        if (++records == stopAt)
                        {
                            ps.BeginStop(null, null); // what Ctrl+C does
                        }
                    },
                    ("d", dir));

                Assert.True(r.Stopped);
                Assert.Empty(r.Errors);
                int convertedCount = 0;
                foreach (string f in files)
                {
                    Assert.Equal(hashes[f], FileFacts.Hash(f));
                    bool converted = inodes[f] != Stat(f, "%i");
                    Assert.Equal(converted ? toNoCow : !toNoCow, FileFacts.HasNoCow(f));
                    Assert.NotEqual(0, Shell.Try("getfattr", "-n", TemporaryFile.MarkerAttribute, f).ExitCode); // no marker left on a file in place
                    convertedCount += converted ? 1 : 0;
                }

                Assert.InRange(convertedCount, 0, files.Count - 1);
                Assert.Equal(listing, FileFacts.Listing(dir));

                // The rest, to the same state, for the next round.
                PwshResult rest = Pwsh.Run((toNoCow ? "ConvertTo-NoCow" : "ConvertFrom-NoCow") + " -LiteralPath $d -Recurse" + Yes, ("d", dir));
                Assert.Empty(rest.Errors);
                toNoCow = !toNoCow;
            }
        }

        [SkippableFact]
        public void WithErrorActionStopTheRunStopsAtTheFirstErrorAfterWritingEveryResultBeforeIt()
        {
            // Errors that end the pipeline: each file's grace is waited out before the next, as before the graces
            // overlapped. Before: the files before the error were converted but their objects were never written,
            // and files after it were converted too.
            string dir = fs.NewDirectory(TestFs.Btrfs, "stopatfirst");
            List<string> files = SmallFiles(dir, 1, 10, "", 16 * 1024, seed: 300);

            var inodes = files.ToDictionary(f => f, f => Stat(f, "%i"));
            using ChildProcess holder = ChildProcess.HoldingOpen(files[4]);
            PwshResult r = Pwsh.Run("try { ConvertTo-NoCow -LiteralPath $d -Recurse -PassThru -ErrorAction Stop" + Yes + " } catch { 'stopped: ' + $_.FullyQualifiedErrorId }", ("d", dir));

            List<object> output = r.Output.Select(o => o.BaseObject).ToList();
            Assert.Equal(files.Take(4), output.OfType<NoCowStatus>().Where(s => s.ItemType == FileItemType.File).Select(s => s.Path));
            Assert.Equal("stopped: FileInUse,Btrfs.Commands.ConvertToNoCowCommand", Assert.IsType<string>(output[^1]));
            Assert.All(files.Take(4), f => Assert.True(FileFacts.HasNoCow(f), f));
            Assert.All(files.Skip(4), f => Assert.Equal(inodes[f], Stat(f, "%i")));
            Assert.All(files.Skip(4), f => Assert.False(FileFacts.HasNoCow(f), f));
        }

        [SkippableFact]
        public void PassThruIntoACommandThatStopsEarlyConvertsOnlyWhatItReports()
        {
            // -PassThru: the graces are waited out file by file, so whatever takes the objects may stop the
            // pipeline after any of them, also through a function (which hides what comes after it). Before:
            // five files converted, one reported.
            string dir = fs.NewDirectory(TestFs.Btrfs, "passthrufirst");
            List<string> files = SmallFiles(dir, 1, 10, "", 16 * 1024, seed: 700);

            PwshResult r = Pwsh.Run("function Conv { ConvertTo-NoCow -LiteralPath $d -Recurse -PassThru" + Yes + " }; Conv | Where-Object ItemType -eq File | Select-Object -First 1", ("d", dir));
            Assert.Empty(r.Errors);
            Assert.Equal(files[0], Assert.Single(r.Objects<NoCowStatus>()).Path);
            Assert.Equal(new[] { true }.Concat(Enumerable.Repeat(false, 9)), files.Select(FileFacts.HasNoCow));
            Assert.Equal(Enumerable.Range(1, 10).Select(i => $"f{i:D2}"), FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void ErrorsComeBetweenTheResultsOfTheFilesBeforeAndAfterThem()
        {
            // The graces overlap, yet an error (a file in use) is written after the results of the files before it.
            string dir = fs.NewDirectory(TestFs.Btrfs, "errorsinorder");
            List<string> files = SmallFiles(dir, 1, 10, "", 16 * 1024, seed: 400);

            using ChildProcess holder = ChildProcess.HoldingOpen(files[4]);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse -Verbose" + Yes + " 4>&1 2>&1", ("d", dir));

            List<string> seen = r.Output.Select(o => o.BaseObject switch
            {
                VerboseRecord v when System.Text.RegularExpressions.Regex.Match(v.Message, "^'(.*)' is now NOCOW: ") is { Success: true } m => Path.GetFileName(m.Groups[1].Value),
                VerboseRecord => "other",
                ErrorRecord e => "error " + Path.GetFileName((string)e.TargetObject),
                object other => other.ToString()!,
            }).Where(x => x != "other").ToList();
            Assert.Equal(new[] { "f01", "f02", "f03", "f04", "error f05", "f06", "f07", "f08", "f09", "f10" }, seen);
        }

        [SkippableFact]
        public void AFileInItsGraceIsNeverOpenedByTheRunItself()
        {
            // Before the graces ended, a listing taken meanwhile held the hidden name of the old file, and the same
            // file reached by another path was opened while its lease was held: the run broke its own lease (a
            // file refused as "opened by another process" and an EAGAIN). Now its own hidden names are skipped and
            // a file in its grace settles before the run opens it again.
            string dir = fs.NewDirectory(TestFs.Btrfs, "ownopens");
            string link = dir + "-link";
            Shell.Run("ln", "-s", dir, link);
            string longA = Path.Combine(dir, new string('a', 210) + "1"), longB = Path.Combine(dir, new string('a', 210) + "2");
            string[] files = { Path.Combine(dir, "f1"), Path.Combine(dir, "f2"), Path.Combine(dir, "f3"), longA, longB };
            for (int i = 0; i < files.Length; i++)
            {
                FileBuilder.Chunks(files[i], 2, 16 * 1024, 32 * 1024, fsyncEach: false, seed: 500 + i);
            }

            var hashes = files.ToDictionary(f => f, FileFacts.Hash);
            string[] listing = FileFacts.Listing(dir);

            PwshResult listed = Pwsh.Run("& { Get-Item -LiteralPath $f; Get-ChildItem -Force -LiteralPath $d } | ConvertTo-NoCow" + Yes, ("f", files[1]), ("d", dir));
            Assert.Empty(listed.Errors);
            PwshResult back = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $a, $b" + Yes, ("a", files[0]), ("b", Path.Combine(link, "f1")));
            Assert.Empty(back.Errors);
            PwshResult alike = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $a, $b, $d -Recurse" + Yes, ("a", longA), ("b", longB), ("d", dir));
            Assert.Empty(alike.Errors);

            Assert.All(files, f => Assert.Equal(hashes[f], FileFacts.Hash(f)));
            Assert.All(files, f => Assert.False(FileFacts.HasNoCow(f), f));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void TheNamedTemporaryPathWorksAndLeavesNothing()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "named");
            string file = RichFile(dir);
            string hash = FileFacts.Hash(file);
            string[] listing = FileFacts.Listing(dir);
            Assert.Empty(ConvertNamed(file));

            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        /// <summary>
        /// A hidden temporary name as a rewrite running in another process has it: the name and marker carry the pid of
        /// <paramref name="holder"/>, a process that has the file open, as a running rewrite holds its files.
        /// </summary>
        private static string HeldLookalike(string dir, string baseName, string hex, out ChildProcess holder)
        {
            string made = Path.Combine(dir, "held-" + hex);
            FileBuilder.WriteNew(made, new byte[] { 1, 2, 3 });
            holder = ChildProcess.HoldingOpen(made);
            string path = Path.Combine(dir, $".{baseName}.~btrfs-{holder.Pid}-{hex}");
            File.Move(made, path);
            Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", $"{holder.Pid}-{hex}", path);
            return path;
        }

        /// <summary>A hidden file named like this module's temporary files, with or without its marker.</summary>
        private static string Lookalike(string dir, string name, string? marker, string? owner = null)
        {
            string path = Path.Combine(dir, name);
            FileBuilder.WriteNew(path, new byte[] { 1, 2, 3 });
            if (marker is not null)
            {
                Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", marker, path);
            }

            if (owner is not null)
            {
                Shell.Run("chown", owner, path);
            }

            return path;
        }

        /// <summary>ConvertTo-NoCow's Core through a hidden named temporary file (the path of filesystems without O_TMPFILE); returns the notices it gave.</summary>
        private static List<string> ConvertNamed(string file)
        {
            var notices = new List<string>();
            using NoCowConversion conversion = NoCowConversion.Prepare(file, toNoCow: true, new NoCowConversionOptions { ForceNamedTemporary = true });
            conversion.Run(new RewriteSession(), null, default, notices.Add);
            return notices;
        }

        [SkippableFact]
        public void AnOldFileAKilledRunMarkedButThatCannotBeProvenIsKeptAndSaidEveryTime()
        {
            // Before: an old file a killed run had replaced, whose replacement was itself replaced since (as editors
            // save), was kept without a word, a hidden whole copy of the data, for ever (a hostile review).
            string dir = fs.NewDirectory(TestFs.Btrfs, "stale-left");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            string old = Path.Combine(dir, ".vm.img.~btrfs-999999994-0badc0de");
            FileBuilder.WriteNew(old, new byte[] { 1, 2, 3 });
            Shell.Run("setfattr", "-n", "user.btrfs-module.replaced", "-v", "999999994-0badc0de 3 1.000000000", old);
            string notOurs = Path.Combine(dir, ".notes.~btrfs-999999993-0badc0de"); // another mark: nothing said
            FileBuilder.WriteNew(notOurs, new byte[] { 4 });
            Shell.Run("setfattr", "-n", "user.btrfs-module.replaced", "-v", "999999999-0badc0de 1 1.000000000", notOurs);
            string before = Shell.Run("stat", "-c", "%i %s %Y %Z", old) + Shell.Run("getfattr", "-d", old);

            foreach (string run in new[] { "ConvertTo-NoCow -LiteralPath $f", "ConvertFrom-NoCow -LiteralPath $f" })
            {
                PwshResult r = Pwsh.Run(run + Yes, ("f", file));
                Assert.Empty(r.Errors);
                Assert.Contains($"Left '{old}' as it is", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            }

            Assert.Equal(before, Shell.Run("stat", "-c", "%i %s %Y %Z", old) + Shell.Run("getfattr", "-d", old));
            Assert.True(File.Exists(notOurs));
        }

        [SkippableFact]
        public void OnlyATemporaryFileProvenToBeThisModulesOwnIsEverRemoved()
        {
            // Before: any ".<name>.~btrfs-<dead pid>-<8 hex>" was deleted, someone else's notes included,
            // even on btrfs where O_TMPFILE means no named temporary file ever exists.
            string dir = fs.NewDirectory(TestFs.Btrfs, "stale");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            string ours = Lookalike(dir, ".vm.img.~btrfs-999999999-0badc0de", "999999999-0badc0de");
            string[] kept =
            {
                Lookalike(dir, ".notes.~btrfs-999999-abcdef12", null),                                   // no marker: someone else's
                Lookalike(dir, ".a.~btrfs-999999998-0badc0de", "999999999-0badc0de"),                      // marker of another name
                Lookalike(dir, ".b.~btrfs-999999997-0badc0de", "999999997-0badc0de", "1234:1234"),         // another user's
                Lookalike(dir, $".c.~btrfs-{Environment.ProcessId}-00c0ffee", $"{Environment.ProcessId}-00c0ffee"), // a run still going
                Lookalike(dir, ".vm.img.~btrfs-notapid", "notapid"),
            };
            string twoLinks = Lookalike(dir, ".d.~btrfs-999999996-0badc0de", "999999996-0badc0de");
            Shell.Run("ln", twoLinks, Path.Combine(dir, "d-link"));
            string target = Lookalike(dir, "target", "999999995-0badc0de");
            File.CreateSymbolicLink(Path.Combine(dir, ".e.~btrfs-999999995-0badc0de"), target);

            // Also with O_TMPFILE (btrfs's default path), where the copy is named only just before the exchange (a
            // run killed then leaves it, or the file it replaced), the run removes its own kind's leftovers, says
            // so, and removes nothing else.
            // One with another name loses only its hidden name (the file lives on, without the mark).
            PwshResult r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f; ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Equal(2, r.Warnings.Count);
            Assert.Contains(".vm.img.~btrfs-999999999-0badc0de", r.Warnings[0].Message, StringComparison.Ordinal);
            Assert.Contains(".d.~btrfs-999999996-0badc0de", r.Warnings[1].Message, StringComparison.Ordinal);
            Assert.Contains("Only that name was removed", r.Warnings[1].Message, StringComparison.Ordinal);
            Assert.False(File.Exists(ours));
            Assert.False(File.Exists(twoLinks));
            Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(dir, "d-link")));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", Path.Combine(dir, "d-link")), StringComparison.Ordinal);
            Assert.All(kept.Append(target), p => Assert.True(File.Exists(p), p));

            // The same through a hidden named temporary file (filesystems without O_TMPFILE).
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            ours = Lookalike(dir, ".vm.img.~btrfs-999999999-0badc0de", "999999999-0badc0de");
            Assert.Contains(".vm.img.~btrfs-999999999-0badc0de", Assert.Single(ConvertNamed(file)), StringComparison.Ordinal);
            Assert.False(File.Exists(ours));
            Assert.All(kept.Append(target), p => Assert.True(File.Exists(p), p));
            Assert.True(Directory.GetFileSystemEntries(dir, ".e.~btrfs-*").Length == 1);

            // One a process has open is kept: the process would go on writing into a file no directory holds (found
            // by a hostile review). Once closed, it goes.
            string other = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "stale-open"), "vm.img");
            FileBuilder.Chunks(other, 2, 4096, 8192);
            string held = Lookalike(Path.GetDirectoryName(other)!, ".vm.img.~btrfs-999999999-0badc0de", "999999999-0badc0de");
            using (var writer = new FileStream(held, FileMode.Open, FileAccess.ReadWrite))
            {
                r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", other));
                Assert.Empty(r.Errors);
                Assert.Empty(r.Warnings);
                Assert.True(File.Exists(held));
            }

            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f" + Yes, ("f", other));
            Assert.Empty(r.Errors);
            Assert.Contains(".vm.img.~btrfs-999999999-0badc0de", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.False(File.Exists(held));
        }

        [SkippableFact]
        public void ARecursiveRunPassesOverTheTemporaryNameOfAConversionRunningBesideIt()
        {
            // Before: two -Recurse runs over one directory: one listed the other's hidden temporary name, and by its
            // turn the name was gone: an error ("removed or renamed after it was listed") for a file that was never
            // the user's. A name of the pattern whose process is alive (here pid 1) is another run's. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "running-beside");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            string running = HeldLookalike(dir, "other.img", "0badc0de", out ChildProcess holder);
            using ChildProcess held = holder;

            // A file merely named like one, without that run's marker, is the user's: converted (before: passed over with a
            // verbose note, so anyone could hide a file from a conversion by its name; a hostile review).
            string named = Lookalike(dir, ".data.~btrfs-1-abcdef12", null);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse -Verbose" + Yes, ("d", dir));
            Assert.Empty(r.Errors);
            Assert.True(FileFacts.HasNoCow(file));
            Assert.False(FileFacts.HasNoCow(running));
            Assert.True(FileFacts.HasNoCow(named));
            Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(named));
            Assert.Contains(r.Verbose, v => v.Message.Contains($"Skipping '{running}': the hidden temporary name of a rewrite this module is running in process {holder.Pid}", StringComparison.Ordinal));
            Assert.DoesNotContain(r.Verbose, v => v.Message.Contains("Skipping '" + named + "'", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void EveryWalkPassesOverTheTemporaryNameOfARewriteRunningBesideIt()
        {
            // Before: only the conversions passed such a name over. A read-only walk beside a conversion
            // (Measure-Fragmentation -Recurse in a loop) opened its hidden names, so the conversion found its files
            // opened in their grace, gave up, and left full-size copies behind; and the walk reported files that were
            // never the user's. Found by a hostile test.
            string dir = fs.NewDirectory(TestFs.Btrfs, "walks-beside");
            FileBuilder.Chunks(Path.Combine(dir, "vm.img"), 2, 4096, 8192);
            FileBuilder.WriteNew(Path.Combine(dir, "vm2.img"), FileBuilder.RandomBytes(8192, 3));
            FileBuilder.WriteNew(Path.Combine(dir, "vm3.img"), FileBuilder.RandomBytes(8192, 3));
            string running = HeldLookalike(dir, "other.img", "0badc0de", out ChildProcess holder);
            using ChildProcess held = holder;
            string named = Lookalike(dir, ".data.~btrfs-1-abcdef12", null); // no marker: the user's

            // Name and marker forged, with the pid of a running process that does not have the file open: the user's
            // (before the review: passed over, so a user could hide a file from root's walks, a backup's included).
            string forged = Lookalike(dir, $".forged.img.~btrfs-{holder.Pid}-12345678", $"{holder.Pid}-12345678");

            // And with pid 1, on a file of another user than pid 1's: where pid 1's descriptors cannot be looked at (this
            // sandbox's init refuses even root), the process must run as the file's owner.
            string forgedOne = Lookalike(dir, ".one.img.~btrfs-1-87654321", "1-87654321", owner: "nobody");

            // And with the pid of the process that walks (whose own descriptors hold what it looks at): never proof.
            string forgedSelf = Lookalike(dir, $".self.img.~btrfs-{Environment.ProcessId}-abcdef01", $"{Environment.ProcessId}-abcdef01");
            string skipped = $"Skipping '{running}': the hidden temporary name of a rewrite this module is running in process {holder.Pid}";
            string copy = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "walks-beside-copy"), "tree");
            string[] listing = FileFacts.Listing(dir);
            foreach (string command in new[]
            {
                "Get-BtrfsExtent", "Measure-Fragmentation", "Measure-BtrfsUsage", "Test-NoCow",
                "Invoke-BtrfsDefrag -WhatIf", "Set-NoCow -WhatIf", "Find-BtrfsDuplicate -MinimumSize 1", "New-BtrfsReflink -Destination $c",
            })
            {
                PwshResult r = Pwsh.Run($"{command} -LiteralPath $d -Recurse -Verbose", ("d", dir), ("c", copy));
                Assert.True(r.Errors.Count == 0, command + ": " + string.Join("\n", r.Errors.Select(e => e.Exception.Message)));
                Assert.True(r.Verbose.Any(v => v.Message.Contains(skipped, StringComparison.Ordinal)), command);
                Assert.DoesNotContain(r.Verbose, v => v.Message.Contains("Skipping '" + named + "'", StringComparison.Ordinal));
                Assert.DoesNotContain(running, string.Join("\n", r.Output.SelectMany(o => o is System.Management.Automation.PSObject p ? p.Properties.Where(x => x.Name is "Path" or "Paths").Select(x => x.Value?.ToString() ?? string.Empty) : Array.Empty<string>())), StringComparison.Ordinal);
            }

            List<FragmentationReport> measured = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse", ("d", dir)).Objects<FragmentationReport>();
            Assert.Contains(measured, f => f.Path == named);
            Assert.Contains(measured, f => f.Path == forged);
            Assert.Contains(measured, f => f.Path == forgedOne);
            Assert.Contains(measured, f => f.Path == forgedSelf);
            Assert.True(File.Exists(Path.Combine(copy, Path.GetFileName(named))));
            Assert.True(File.Exists(Path.Combine(copy, Path.GetFileName(forged))));
            Assert.False(File.Exists(Path.Combine(copy, Path.GetFileName(running))));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void AWalkDoesNotEnterATreeBeingBuiltUnderAHiddenName()
        {
            // Before: a walk beside New-BtrfsReflink -Recurse entered the tree being built under its hidden staging name:
            // measured it twice, found duplicates that then moved, and a conversion would have copied its reflinked files
            // (a review). A staging name whose run holds the directory open is passed over; one forged (the marker and
            // the pid of a running process that does not hold it) is walked as any directory.
            string dir = fs.NewDirectory(TestFs.Btrfs, "walks-beside-tree");
            FileBuilder.WriteNew(Path.Combine(dir, "vm.img"), FileBuilder.RandomBytes(8192, 5));
            string made = Directory.CreateDirectory(Path.Combine(dir, "building")).FullName;
            FileBuilder.WriteNew(Path.Combine(made, "inside.img"), FileBuilder.RandomBytes(8192, 6));
            using ChildProcess holder = ChildProcess.HoldingOpen(made);
            string staging = Path.Combine(dir, $".tree.~btrfs-staging-{holder.Pid}-0badc0de");
            Directory.Move(made, staging);
            Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", $"{holder.Pid}-0badc0de", staging);
            string forged = Directory.CreateDirectory(Path.Combine(dir, $".other.~btrfs-staging-{holder.Pid}-12345678")).FullName;
            Shell.Run("setfattr", "-n", "user.btrfs-module.temporary", "-v", $"{holder.Pid}-12345678", forged);
            FileBuilder.WriteNew(Path.Combine(forged, "seen.img"), FileBuilder.RandomBytes(8192, 7));

            PwshResult r = Pwsh.Run("Measure-Fragmentation -LiteralPath $d -Recurse -Verbose", ("d", dir));
            Assert.Empty(r.Errors);
            Assert.Equal(
                new[] { Path.Combine(forged, "seen.img"), Path.Combine(dir, "vm.img") }.Order(StringComparer.Ordinal),
                r.Objects<FragmentationReport>().Select(f => f.Path).Order(StringComparer.Ordinal));
            Assert.Contains(r.Verbose, v => v.Message.StartsWith($"Not entering '{staging}': the hidden name of a tree this module is building", StringComparison.Ordinal));
        }

        [SkippableFact]
        public void LeftoversOfRunsKilledInTheGraceAreRemovedAlsoWhereTheirNamesWereCutOrNumbered()
        {
            // Before: a name cut between the halves of an emoji (written as U+FFFD), and a hidden name numbered "~1"
            // (two long names cut alike), could not be matched to the file they were made from: the old copy stayed
            // for good ("the next rewrite removes it", which never happened), the new file kept the module's
            // marker, and with two such names the marker was taken off the wrong one. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "stale-cut");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            const string Stamp = "999999999-0badc0de";
            string emoji = "a" + string.Concat(Enumerable.Repeat("\U0001F600", 63)); // 253 bytes
            string two = new string('c', 220) + "_2", three = new string('c', 220) + "_3";
            var pairs = new[]
            {
                (Name: emoji, Hidden: TemporaryFile.HiddenName(emoji, TemporaryFile.Marker, Stamp), Size: 3),
                (Name: two, Hidden: TemporaryFile.HiddenName(two, TemporaryFile.Marker, Stamp), Size: 4),
                (Name: three, Hidden: TemporaryFile.HiddenName(three, TemporaryFile.Marker, Stamp, attempt: 1), Size: 5),
            };
            foreach ((string name, string hidden, int size) in pairs)
            {
                // Killed in the grace: the old file under the hidden name, marked as replaced (its size and time then);
                // the new one under the name, with the same size and times, marked as the run's new copy.
                string old = Path.Combine(dir, hidden), now = Path.Combine(dir, name);
                FileBuilder.WriteNew(old, new byte[size]);
                FileBuilder.WriteNew(now, new byte[size]);
                Shell.Run("touch", "-r", old, now);
                KilledReplacement.Mark(old, now, Stamp);
            }

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Equal(3, r.Warnings.Count);
            foreach ((string name, string hidden, _) in pairs)
            {
                Assert.False(File.Exists(Path.Combine(dir, hidden)), hidden);
                Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", Path.Combine(dir, name)), StringComparison.Ordinal);
            }

            Assert.Equal(new[] { emoji, two, three, "vm.img" }.Order(StringComparer.Ordinal), FileFacts.Listing(dir).Order(StringComparer.Ordinal));

            // The pair is told by its size and times: one old copy left (of 'two'), two new files cut alike both
            // marked ('three' in its grace whose old copy is gone): the mark comes off 'two' only.
            string other = fs.NewDirectory(TestFs.Btrfs, "stale-cut-pair");
            string twoOld = Path.Combine(other, TemporaryFile.HiddenName(two, TemporaryFile.Marker, Stamp));
            FileBuilder.WriteNew(twoOld, new byte[4]);
            FileBuilder.WriteNew(Path.Combine(other, two), new byte[4]);
            FileBuilder.WriteNew(Path.Combine(other, three), new byte[5]);
            Shell.Run("touch", "-r", twoOld, Path.Combine(other, two));
            KilledReplacement.Mark(twoOld, Path.Combine(other, two), Stamp);
            Shell.Run("setfattr", "-n", TemporaryFile.MarkerAttribute, "-v", Stamp, Path.Combine(other, three));
            string otherFile = Path.Combine(other, "vm.img");
            FileBuilder.Chunks(otherFile, 2, 4096, 8192);
            Assert.Empty(Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", otherFile)).Errors);
            Assert.False(File.Exists(twoOld));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", Path.Combine(other, two)), StringComparison.Ordinal);
            Assert.Contains("btrfs-module.temporary", Shell.Run("getfattr", "-d", Path.Combine(other, three)), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ALeftoverOfAKilledRunCarriesTheMarkerAndTheNextRunRemovesIt()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "killed");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 32, 1 << 20, 1 << 20, fsyncEach: false);
            string hash = FileFacts.Hash(file);
            using (ChildProcess child = ChildConverter.ConvertToNoCowPausing(file, 8L << 20, namedTemporary: true))
            {
                string? line = child.ReadLine(TimeSpan.FromSeconds(60));
                Assert.True(line is not null && line.StartsWith("paused ", StringComparison.Ordinal), "the child did not pause: " + child.StdErr);
                child.Kill(); // SIGKILL mid-copy: the hidden temporary file stays
            }

            string leftover = Assert.Single(Directory.GetFiles(dir, ".vm.img.~btrfs-*"));
            Assert.Contains("user.btrfs-module.temporary", Shell.Run("getfattr", "-d", leftover), StringComparison.Ordinal);

            Assert.Contains(Path.GetFileName(leftover), Assert.Single(ConvertNamed(file)), StringComparison.Ordinal);
            Assert.Equal(new[] { "vm.img" }, FileFacts.Listing(dir));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ARunKilledAsItRemovesTheReplacedFileLeavesWhatTheNextRunProvesAndRemoves()
        {
            // Before: the new copy's marks came off before the replaced file under the hidden name was removed, so a run
            // killed between the two left a hidden full copy that no later run could prove its own: kept for good, with
            // a warning each time. Found by a hostile test; the kill is placed by strace at the removal (unlinkat).
            Requires.That(Shell.Try("strace", "-V").ExitCode == 0, "strace is not installed (.ci/run installs it)");
            string dir = fs.NewDirectory(TestFs.Btrfs, "killed-at-removal");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 1 << 20, 1 << 20, fsyncEach: false);
            string hash = FileFacts.Hash(file);
            RealPwsh.Result killed = RealPwsh.RunWrapped(
                "ConvertTo-NoCow -LiteralPath $F -Confirm:$false",
                new[] { "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlinkat", "-e", "inject=unlinkat:signal=KILL" },
                ("F", file));
            Assert.True(killed.ExitCode != 0, "the run was not killed: " + killed.StdOut + killed.StdErr);
            string old = Assert.Single(Directory.GetFiles(dir, ".vm.img.~btrfs-*")); // killed at the removal of the replaced file
            Assert.Equal(hash, FileFacts.Hash(old));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.False(FileFacts.HasNoCow(old));
            Assert.Equal(hash, FileFacts.Hash(file));

            string next = Path.Combine(dir, "next.img");
            FileBuilder.Chunks(next, 2, 4096, 8192);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", next));
            Assert.Empty(r.Errors);
            Assert.StartsWith($"Removed '{old}': the old file a run of this module that was killed had just replaced", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(new[] { "next.img", "vm.img" }, FileFacts.Listing(dir).Order(StringComparer.Ordinal));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void AFileReplacedByARunKilledInTheGraceIsRemovedByTheNextRunOnlyIfUnchanged()
        {
            // Before: a run killed after the exchange (in the grace in which it waits for late openers of the old
            // file) left the old file under the hidden name without a marker, so no later run could prove it its own
            // and it stayed, as large as the original, forever; the new file kept the module's marker. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "grace-killed");
            string file = Path.Combine(dir, "vm.img");
            string other = Path.Combine(dir, "other.img");
            string copy = Path.Combine(dir, "copy.img");
            FileBuilder.Chunks(file, 8, 1 << 20, 1 << 20, fsyncEach: false);
            FileBuilder.Chunks(other, 1, 4096, 4096, fsyncEach: false);
            FileBuilder.Chunks(copy, 1, 4096, 4096, fsyncEach: false);
            string hash = FileFacts.Hash(file);
            string hidden = KillInTheGrace(file);

            // Left: the new file under the name, the old one under the hidden name, carrying the mark of the run.
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.Equal(hash, FileFacts.Hash(Path.Combine(dir, hidden)));
            Assert.Contains("user.btrfs-module.replaced", Shell.Run("getfattr", "-d", Path.Combine(dir, hidden)), StringComparison.Ordinal);

            // The next run that replaces a file in the directory removes it, says so, and drops the run's marker
            // from the new file: here New-BtrfsReflink -Force (ConvertTo-NoCow below).
            PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $f -Destination $d -Force -Confirm:$false", ("f", other), ("d", copy));
            Assert.Empty(r.Errors);
            Assert.Contains(hidden, Assert.Single(r.Warnings, w => w.Message.Contains("was killed", StringComparison.Ordinal)).Message, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(dir, hidden)));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);
            Assert.Equal(new[] { "copy.img", "other.img", "vm.img" }, FileFacts.Listing(dir));

            // One that was written to after the run died (an opener the run's lease held back would) is kept; an
            // unchanged one goes.
            string second = Path.Combine(dir, "vm2.img");
            FileBuilder.Chunks(second, 4, 1 << 20, 1 << 20, fsyncEach: false);
            hidden = KillInTheGrace(second);
            Shell.Run("sh", "-c", $"echo late >> '{Path.Combine(dir, hidden)}'");
            string written = FileFacts.Hash(Path.Combine(dir, hidden));
            // A marked hidden file with no file beside it that carries the same run's marker is no leftover of a
            // replacement either: kept. A name too long to be kept whole in the hidden one is still found.
            string ghost = Path.Combine(dir, ".ghost.img.~btrfs-999999999-0badc0de");
            FileBuilder.Chunks(ghost, 1, 4096, 4096, fsyncEach: false);
            Shell.Run("sh", "-c", $"setfattr -n user.btrfs-module.replaced -v \"999999999-0badc0de $(stat -c '%s %.9Y' '{ghost}')\" '{ghost}'");
            string longName = Path.Combine(dir, new string('l', 240) + ".img");
            FileBuilder.Chunks(longName, 2, 1 << 20, 1 << 20, fsyncEach: false);
            string longHidden = KillInTheGrace(longName);
            Assert.True(longHidden.Length < 240, longHidden);
            r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", other));
            Assert.Empty(r.Errors);
            // Both kept are said to be kept (before: nothing was said, and they stayed unseen; a hostile review).
            Assert.Equal(3, r.Warnings.Count);
            Assert.Contains(r.Warnings, w => w.Message.StartsWith($"Left '{Path.Combine(dir, hidden)}' as it is", StringComparison.Ordinal));
            Assert.Contains(r.Warnings, w => w.Message.StartsWith($"Left '{ghost}' as it is", StringComparison.Ordinal));
            Assert.Equal(written, FileFacts.Hash(Path.Combine(dir, hidden)));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.True(File.Exists(ghost));
            Assert.Contains(longHidden, Assert.Single(r.Warnings, w => w.Message.StartsWith("Removed", StringComparison.Ordinal)).Message, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(dir, longHidden)));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", longName), StringComparison.Ordinal);

            // Root converting another user's file: what its killed run left belongs to that user, and root's next
            // run removes it too (before, only that user's own runs would have).
            string users = Path.Combine(dir, "users.img");
            FileBuilder.Chunks(users, 2, 1 << 20, 1 << 20, fsyncEach: false);
            Shell.Run("chown", "65534:65534", users);
            string usersHidden = KillInTheGrace(users);
            Assert.Equal("65534", Shell.Run("stat", "-c", "%u", Path.Combine(dir, usersHidden)).Trim());
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f" + Yes, ("f", other));
            Assert.Empty(r.Errors);
            Assert.Contains(usersHidden, Assert.Single(r.Warnings, w => w.Message.StartsWith("Removed", StringComparison.Ordinal)).Message, StringComparison.Ordinal);
            Assert.Equal(2, r.Warnings.Count(w => w.Message.StartsWith("Left", StringComparison.Ordinal))); // said again: still there
            Assert.False(File.Exists(Path.Combine(dir, usersHidden)));
            Assert.True(File.Exists(ghost));
        }

        [SkippableFact]
        public void AFileAKilledRunReplacedThatWasEditedWithItsTimesPutBackIsKept()
        {
            // Before: the leftover's mark held its size and modification time only, so one edited in place with its
            // modification time put back (touch -m) was removed as "not changed since", and the edit lost. Found by a
            // hostile test. Its change time, which nobody can set, is recorded on the new copy just after the exchange.
            string dir = fs.NewDirectory(TestFs.Btrfs, "grace-edited");
            string file = Path.Combine(dir, "vm.img"), other = Path.Combine(dir, "other.img");
            FileBuilder.Chunks(file, 4, 1 << 20, 1 << 20, fsyncEach: false);
            FileBuilder.Chunks(other, 1, 4096, 4096, fsyncEach: false);
            string hidden = Path.Combine(dir, KillInTheGrace(file));
            Assert.Contains("user.btrfs-module.replaced-changed", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal); // on the new copy
            string mtime = Shell.Run("stat", "-c", "%.9Y", hidden).Trim();
            Shell.Run("sh", "-c", $"printf EDITED | dd of='{hidden}' conv=notrunc 2>/dev/null && touch -m -d @{mtime} '{hidden}'");
            Assert.Equal(mtime, Shell.Run("stat", "-c", "%.9Y", hidden).Trim());
            string edited = FileFacts.Hash(hidden);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", other));
            Assert.Empty(r.Errors);
            Assert.StartsWith($"Left '{hidden}' as it is", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(edited, FileFacts.Hash(hidden));
        }

        [SkippableFact]
        public void WhatARunKilledWhileReplacingOrLinkingAHardLinkedFileLeftIsRemovedAsOneNameOnly()
        {
            // Before: only a leftover with one link was removed, so what a run killed in the grace of a hard-linked file's
            // replacement (-Force) left (the hidden name one more name of the old file), or what a run killed while making
            // another name a link of the converted file left (the hidden name one more name of the converted file), stayed
            // for good, and the other names kept the module's marks. Found by a review of the relinking.
            string dir = fs.NewDirectory(TestFs.Btrfs, "killed-linked");
            string file = Path.Combine(dir, "vm.img");
            string link = Path.Combine(dir, "vm-link.img");
            string other = Path.Combine(dir, "other.img");
            FileBuilder.Chunks(file, 4, 1 << 20, 1 << 20, fsyncEach: false);
            FileBuilder.Chunks(other, 1, 4096, 4096, fsyncEach: false);
            Shell.Run("ln", file, link);
            string hash = FileFacts.Hash(file);

            // 1. Killed in the grace of vm.img's replacement: the old file under the hidden name and under vm-link.img.
            string hidden;
            using (ChildProcess child = ChildConverter.ConvertLinkedToNoCowStoppingAfterTheExchange(file))
            {
                hidden = ReadUntil(child, "exchanged ");
                child.Kill();
                child.WaitForExit(TimeSpan.FromSeconds(30));
            }

            string hiddenPath = Path.Combine(dir, hidden);
            Assert.Equal(Links(link), Links(hiddenPath));
            Assert.Equal("2", Links(link));
            Assert.Contains("user.btrfs-module.replaced", Shell.Run("getfattr", "-d", link), StringComparison.Ordinal);
            string linkStamp = Shell.Run("stat", "-c", "%i %s %Y", link);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", other));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            string said = Assert.Single(r.Warnings).Message;
            Assert.Contains(hidden, said, StringComparison.Ordinal);
            Assert.Contains("lives on under its other name", said, StringComparison.Ordinal);
            Assert.Equal(new[] { "other.img", "vm-link.img", "vm.img" }, FileFacts.Listing(dir));
            Assert.Equal("1", Links(link));
            Assert.Equal(linkStamp, Shell.Run("stat", "-c", "%i %s %Y", link));
            Assert.Equal(hash, FileFacts.Hash(link));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.True(FileFacts.HasNoCow(file));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", link), StringComparison.Ordinal);
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);

            // 2. Killed just before vm-link.img was made a link of the converted vm.img: the hidden name one more name of
            //    the converted file, which carries the run's marker; the old file, under vm-link.img, its replaced mark.
            //    Here root's run converting another user's file: the extra name it left belongs to that user.
            string second = Path.Combine(dir, "db.img");
            string secondLink = Path.Combine(dir, "db-link.img");
            FileBuilder.Chunks(second, 3, 1 << 20, 1 << 20, fsyncEach: false);
            Shell.Run("chown", "65534:65534", second);
            Shell.Run("ln", second, secondLink);
            string secondHash = FileFacts.Hash(second);
            using (ChildProcess child = ChildConverter.RelinkStoppingBeforeTheExchange(second, secondLink))
            {
                hidden = ReadUntil(child, "linking ");
                child.Kill();
                child.WaitForExit(TimeSpan.FromSeconds(30));
            }

            hiddenPath = Path.Combine(dir, hidden);
            Assert.Equal(Shell.Run("stat", "-c", "%i", second), Shell.Run("stat", "-c", "%i", hiddenPath));
            Assert.Equal("2", Links(second));
            Assert.Equal("65534", Shell.Run("stat", "-c", "%u", hiddenPath).Trim());
            Assert.Contains("user.btrfs-module.temporary", Shell.Run("getfattr", "-d", second), StringComparison.Ordinal);
            Assert.Contains("user.btrfs-module.replaced", Shell.Run("getfattr", "-d", secondLink), StringComparison.Ordinal);

            // The next walk of the directory passes the hidden name over, removes it as the extra name it is, takes the
            // marks off both files and gives db-link.img (now a file of one name) a NOCOW copy of its own.
            r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $d -Recurse" + Yes, ("d", dir));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            said = Assert.Single(r.Warnings, w => w.Message.Contains(hidden, StringComparison.Ordinal)).Message;
            Assert.Contains("lives on under its other name", said, StringComparison.Ordinal);
            Assert.Equal(new[] { "db-link.img", "db.img", "other.img", "vm-link.img", "vm.img" }, FileFacts.Listing(dir));
            Assert.Equal("1", Links(second));
            Assert.Equal("1", Links(secondLink));
            Assert.Equal(secondHash, FileFacts.Hash(second));
            Assert.Equal(secondHash, FileFacts.Hash(secondLink));
            Assert.True(FileFacts.HasNoCow(secondLink));
            foreach (string name in FileFacts.Listing(dir))
            {
                Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", Path.Combine(dir, name)), StringComparison.Ordinal);
            }

            static string Links(string path) => Shell.Run("stat", "-c", "%h", path).Trim();
        }

        /// <summary>Reads the child's lines until one begins with <paramref name="prefix"/>; returns the rest of it.</summary>
        private static string ReadUntil(ChildProcess child, string prefix)
        {
            string? line;
            do
            {
                line = child.ReadLine(TimeSpan.FromSeconds(60));
            }
            while (line is not null && !line.StartsWith(prefix, StringComparison.Ordinal));

            Assert.True(line is not null, $"the child did not print '{prefix}': " + child.StdErr);
            return line![prefix.Length..];
        }

        [SkippableFact]
        public void TheFileARunKilledInTheGraceReplacedIsConvertedAgainAtOnceAlsoByAWalk()
        {
            // Before: the next conversion of that same file removed the leftover and took the run's mark off the file
            // after opening it, saw its change time move, and failed with FileChangedDuringCopy; a -Recurse walk that
            // had listed the leftover then reported it FileChangedSinceListed. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "grace-killed-again");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.Chunks(file, 4, 1 << 20, 1 << 20, fsyncEach: false);
            string hash = FileFacts.Hash(file);
            string hidden = KillInTheGrace(file);
            Assert.Contains("user.btrfs-module.temporary", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);

            PwshResult r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f" + Yes, ("f", file));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            Assert.Contains(hidden, Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.False(FileFacts.HasNoCow(file));
            Assert.Equal(hash, FileFacts.Hash(file));
            Assert.DoesNotContain("btrfs-module", Shell.Run("getfattr", "-d", file), StringComparison.Ordinal);
            Assert.Equal(new[] { "vm.img" }, FileFacts.Listing(dir));

            // A walk: the leftover it listed is passed over, the file converted. (Moved before the run is killed: moving a
            // leftover moves its change time, and one changed since the exchange is kept.)
            string walked = Path.Combine(dir, "sub");
            Directory.CreateDirectory(walked);
            File.Move(file, Path.Combine(walked, "vm.img"));
            hidden = KillInTheGrace(Path.Combine(walked, "vm.img"));
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $d -Recurse" + Yes, ("d", walked));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            Assert.Contains(hidden, Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.Equal(new[] { "vm.img" }, FileFacts.Listing(walked));
            Assert.False(FileFacts.HasNoCow(Path.Combine(walked, "vm.img")));
            Assert.Equal(hash, FileFacts.Hash(Path.Combine(walked, "vm.img")));

            // A preview removes nothing, nor does a conversion declined at its prompt, nor one of a file that fails (a
            // review saw the leftovers removed before the prompt).
            hidden = KillInTheGrace(Path.Combine(walked, "vm.img"));
            string[] listing = FileFacts.Listing(walked);
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $d -Recurse -WhatIf", ("d", walked));
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            Assert.Equal(listing, FileFacts.Listing(walked));
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f -Confirm", variables: new Dictionary<string, object?> { ["f"] = Path.Combine(walked, "vm.img") }, answer: (_, _) => 2);
            Assert.Empty(r.Errors);
            Assert.Empty(r.Warnings);
            r = Pwsh.Run("ConvertFrom-NoCow -LiteralPath $f -Confirm:$false", ("f", Path.Combine(walked, "missing.img")));
            Assert.Equal("PathNotFound", Assert.Single(r.ErrorIds));
            Assert.Equal(listing, FileFacts.Listing(walked));
            Assert.True(FileFacts.HasNoCow(Path.Combine(walked, "vm.img")));
        }

        /// <summary>Converts the file in a child process killed (SIGKILL) just after the exchange; returns the hidden name the old file got.</summary>
        private static string KillInTheGrace(string file)
        {
            using ChildProcess child = ChildConverter.ConvertToNoCowStoppingAfterTheExchange(file);
            string? line;
            do
            {
                line = child.ReadLine(TimeSpan.FromSeconds(60));
            }
            while (line is not null && !line.StartsWith("exchanged ", StringComparison.Ordinal));

            Assert.True(line is not null, "the child did not reach the exchange: " + child.StdErr);
            child.Kill();
            child.WaitForExit(TimeSpan.FromSeconds(30));
            return line!["exchanged ".Length..];
        }

        [SkippableFact]
        public void AFileOfThisUsersWithAGroupItIsNotInIsRefusedForTheGroup()
        {
            // Before: "Only root can rewrite a file owned by someone else" for a file this user owns, whose group it
            // is not a member of. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "foreign-group");
            string file = Path.Combine(dir, "mine.img");
            FileBuilder.Chunks(file, 1, 4096, 4096);
            Shell.Run("chown", "-R", "65534:0", dir);
            FileFacts before = FileFacts.Of(file);
            PwshResult r;
            using (Unprivileged.AsNobody())
            {
                r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            }

            System.Management.Automation.ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("AccessDenied,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Contains("group (gid 0) is not one of this user's groups", e.Exception.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("owned by someone else", e.Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Equal(new[] { "mine.img" }, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void AFileInADirectoryThisUserMayNotWriteInIsRefusedAlsoByWhatIf()
        {
            // Before: -WhatIf said what the conversion would cost, and the run was refused by the kernel when the copy was
            // to be made ("Cannot create a new file next to ..."). Found by a hostile test.
            string dir = fs.NewDirectory(TestFs.Btrfs, "unwritable-dir");
            string file = Path.Combine(dir, "nf.img");
            FileBuilder.Chunks(file, 1, 4096, 4096);
            Shell.Run("chown", "65534:65534", file);
            Shell.Run("chmod", "755", dir);
            FileFacts before = FileFacts.Of(file);
            foreach (string how in new[] { " -WhatIf", Yes })
            {
                PwshResult r;
                using (Unprivileged.AsNobody())
                {
                    r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + how, new Dictionary<string, object?> { ["f"] = file }, captureHost: true);
                }

                ErrorRecord e = Assert.Single(r.Errors);
                Assert.Equal("AccessDenied,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
                Assert.Equal(file, e.TargetObject);
                Assert.Contains($"this user may not write in its directory '{dir}' (its owner is uid 0, mode 755)", e.Exception.Message, StringComparison.Ordinal);
                Assert.DoesNotContain("What if", r.HostText, StringComparison.Ordinal);
                Assert.Equal(before, FileFacts.Of(file));
                Assert.Equal(new[] { "nf.img" }, FileFacts.Listing(dir));
            }
        }

        [SkippableFact]
        public void AHardLinkIsRefusedWithoutForceAndWithForceOnlyThisNameIsConverted()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "hardlink");
            string file = Path.Combine(dir, "vm.img");
            string other = Path.Combine(dir, "vm-link.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            Shell.Run("ln", file, other);
            FileFacts before = FileFacts.Of(file);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("FileHasHardLinks,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidOperation, e.CategoryInfo.Category);
            Assert.Equal(file, e.TargetObject);
            Assert.Contains("-Force", e.Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, FileFacts.Of(file));

            r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -Force" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Contains("2 hard links", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.True(FileFacts.HasNoCow(file));
            Assert.False(FileFacts.HasNoCow(other));
            Assert.Equal(FileFacts.Hash(other), FileFacts.Hash(file));
            Assert.Equal("1", Stat(file, "%h"));
        }

        [SkippableFact]
        public void HardLinksWhoseNamesTheRunReachesStayLinksOfOneConvertedFile()
        {
            // Before: with -Recurse -Force (or the names piped), the first name got the converted file and each later name
            // a copy of its own: the links were split (twice the space, writes through one name no longer seen through the
            // other), while the warning said the other names kept the old data.
            string root = fs.NewDirectory(TestFs.Btrfs, "hardlink-tree");
            string tree = Path.Combine(root, "tree"), outside = Path.Combine(root, "outside");
            Directory.CreateDirectory(Path.Combine(tree, "sub"));
            Directory.CreateDirectory(outside);
            string a = Path.Combine(tree, "a.img"), b = Path.Combine(tree, "sub", "b.img"), c = Path.Combine(tree, "c.img");
            string y = Path.Combine(tree, "y.img"), yOut = Path.Combine(outside, "y.img"), plain = Path.Combine(tree, "z.img");
            FileBuilder.Chunks(a, 3, 4096, 8192);
            Shell.Run("ln", a, b);
            Shell.Run("ln", a, c);
            FileBuilder.Chunks(y, 2, 4096, 8192);
            Shell.Run("ln", y, yOut);
            FileBuilder.Chunks(plain, 2, 4096, 8192);
            string hashA = FileFacts.Hash(a), hashY = FileFacts.Hash(y);
            string outInode = Stat(yOut, "%i");

            // -WhatIf previews the later names as the links they would be made, and changes nothing.
            PwshResult preview = Pwsh.Run("ConvertTo-NoCow -LiteralPath $t -Recurse -Force -WhatIf", new Dictionary<string, object?> { ["t"] = tree }, captureHost: true);
            Assert.Empty(preview.Errors);
            Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(preview.HostText.Replace("\n", " ", StringComparison.Ordinal), "with a link of '" + System.Text.RegularExpressions.Regex.Escape(a) + "'").Count);
            Assert.False(FileFacts.HasNoCow(a));
            Assert.Equal("3", Stat(a, "%h"));

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $t -Recurse -Force -Verbose" + Yes, ("t", tree));
            Assert.Empty(r.Errors);
            // a.img (3 links) and y.img (2): nothing about the names made links.
            Assert.Equal(new[] { "'" + a + "' has 3 hard links", "'" + y + "' has 2 hard links" }, r.Warnings.Where(w => w.Message.Contains("hard links", StringComparison.Ordinal)).Select(w => w.Message[..w.Message.IndexOf(':', StringComparison.Ordinal)]));
            Assert.All(r.Warnings.Where(w => w.Message.Contains("hard links", StringComparison.Ordinal)), w => Assert.Contains("is made a link of the converted file", w.Message, StringComparison.Ordinal));
            Assert.Equal(2, r.Verbose.Count(v => v.Message.Contains("is now NOCOW: a link of '" + a + "'", StringComparison.Ordinal)));
            foreach (string name in new[] { a, b, c })
            {
                Assert.True(FileFacts.HasNoCow(name));
                Assert.Equal("3", Stat(name, "%h"));
                Assert.Equal(Stat(a, "%i"), Stat(name, "%i"));
                Assert.Equal(hashA, FileFacts.Hash(name));
            }

            // A name the run did not reach keeps the old file; the one it reached got the converted file alone.
            Assert.True(FileFacts.HasNoCow(y));
            Assert.Equal("1", Stat(y, "%h"));
            Assert.Equal(hashY, FileFacts.Hash(y));
            Assert.Equal(outInode, Stat(yOut, "%i"));
            Assert.Equal("", Shell.Run("getfattr", "--absolute-names", "-d", "-m", "user.btrfs-module", yOut, a, y).Trim()); // no mark of the module stays (a review: the old file kept one)
            Assert.Equal(hashY, FileFacts.Hash(yOut));
            Assert.Equal("1", Stat(yOut, "%h"));
            Assert.False(FileFacts.HasNoCow(yOut));
            Assert.True(FileFacts.HasNoCow(plain));
            Assert.Equal(new[] { "a.img", "c.img", "sub", "y.img", "z.img" }, FileFacts.Listing(tree));
            Assert.Equal(new[] { "b.img" }, FileFacts.Listing(Path.Combine(tree, "sub")));

            // Names piped in one run: the same (and back to COW with ConvertFrom-NoCow, as links still).
            r = Pwsh.Run("Get-ChildItem -LiteralPath $t -Recurse -File | ConvertFrom-NoCow -Force" + Yes, ("t", tree));
            Assert.Empty(r.Errors);
            foreach (string name in new[] { a, b, c })
            {
                Assert.False(FileFacts.HasNoCow(name));
                Assert.Equal("3", Stat(name, "%h"));
                Assert.Equal(Stat(a, "%i"), Stat(name, "%i"));
                Assert.Equal(hashA, FileFacts.Hash(name));
            }
        }

        [SkippableFact]
        public void TheModulesOwnMarksAreNeverCopiedIntoANewFile()
        {
            // A mark a killed run left on a file (here the "replaced" mark a hard-linked old file kept) was copied into the
            // converted file, and from there into every later copy (a hostile review). The user's attributes are copied.
            string file = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "marks-not-copied"), "vm.img");
            FileBuilder.Chunks(file, 2, 4096, 8192);
            Shell.Run("setfattr", "-n", "user.btrfs-module.replaced", "-v", "1-0badc0de 12288 1.000000000", file);
            Shell.Run("setfattr", "-n", "user.keep", "-v", "yes", file);
            Assert.Empty(Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file)).Errors);
            Assert.True(FileFacts.HasNoCow(file));
            string attributes = Shell.Run("getfattr", "--absolute-names", "-d", "-m", "-", file);
            Assert.Contains("user.keep", attributes, StringComparison.Ordinal);
            Assert.DoesNotContain("user.btrfs-module", attributes, StringComparison.Ordinal);
        }

        [SkippableTheory]
        [InlineData("written")]
        [InlineData("hole")]
        [InlineData("attribute")]
        [InlineData("converted-attribute")]
        [InlineData("open")]
        public void ANameIsMadeALinkOfTheConvertedFileOnlyWhileBothHoldTheSameAndNobodyHasItOpen(string how)
        {
            // The converted file was written to after the copy (also where the original has a hole: before, only the
            // original's data ranges were compared, and a write there went unseen), an attribute was set on the old file
            // under the later name (before: lost with the old file), or a process has the converted file open: the later
            // name is refused and left exactly as it was (never linked to data or attributes it did not hold, never
            // replaced under a process), and no mark of the module stays on either file (a review: one did).
            string dir = fs.NewDirectory(TestFs.Btrfs, "relink-" + how);
            string a = Path.Combine(dir, "a.img"), b = Path.Combine(dir, "b.img");
            FileBuilder.Chunks(a, 2, 4096, 8192); // data, a hole of 4 KiB, data
            Shell.Run("ln", a, b);
            using (NoCowConversion first = NoCowConversion.Prepare(a, toNoCow: true, new NoCowConversionOptions { AllowHardLinks = true }))
            {
                first.Run();
            }

            Assert.Equal("", Shell.Run("getfattr", "--absolute-names", "-d", "-m", "user.btrfs-module", b).Trim()); // the old file keeps no mark either
            FileStatus original = FileStatus.OfPath(b, followLinks: false)!.Value, copy = FileStatus.OfPath(a, followLinks: false)!.Value;
            ChildProcess? holder = null;
            switch (how)
            {
                case "written":
                case "hole":
                    using (var w = new FileStream(a, FileMode.Open, FileAccess.Write))
                    {
                        w.Position = how == "written" ? 100 : 5000;
                        w.WriteByte(0x5A);
                    }

                    break;
                case "attribute":
                    Shell.Run("setfattr", "-n", "user.important", "-v", "keep", b);
                    break;
                case "converted-attribute":
                    Shell.Run("setfattr", "-n", "user.secret", "-v", "only-here", a); // an ACL or attribute given the converted file alone
                    break;
                default:
                    holder = ChildProcess.HoldingOpen(a);
                    break;
            }

            try
            {
                FileFacts before = FileFacts.Of(b), twin = FileFacts.Of(a);
                string stamps = FileFacts.Stamp(a) + " / " + FileFacts.Stamp(b); // access times too
                string[] listing = FileFacts.Listing(dir);
                using NoCowConversion second = NoCowConversion.Prepare(b, toNoCow: true, new NoCowConversionOptions { LinkTo = new ConvertedLink(a, original, copy) });
                using var session = new RewriteSession();
                FileOperationException e = Assert.Throws<FileOperationException>(() =>
                {
                    using PendingReplacement pending = second.StartRelink(session, default);
                    second.Complete(pending);
                });
                if (how == "open")
                {
                    Assert.Equal(FileErrorKind.InUse, e.Kind);
                    Assert.Contains($"a process has '{a}' open now", e.Message, StringComparison.Ordinal);
                }
                else
                {
                    Assert.Equal(FileErrorKind.ChangedDuringCopy, e.Kind);
                    Assert.Contains(
                        how switch { "attribute" => "their extended attributes differ now ('user.important')", "converted-attribute" => "their extended attributes differ now ('user.secret')", _ => $"'{a}' was written to since" },
                        e.Message,
                        StringComparison.Ordinal);
                }

                Assert.Equal(stamps, FileFacts.Stamp(a) + " / " + FileFacts.Stamp(b));
                Assert.Equal(before, FileFacts.Of(b));
                Assert.Equal(twin, FileFacts.Of(a));
                Assert.Equal(listing, FileFacts.Listing(dir));
                Assert.NotEqual(Stat(a, "%i"), Stat(b, "%i"));
                Assert.Equal("", Shell.Run("getfattr", "--absolute-names", "-d", "-m", "user.btrfs-module", a, b).Trim());
                if (how == "attribute")
                {
                    Assert.Contains("user.important", Shell.Run("getfattr", "--absolute-names", "-d", b), StringComparison.Ordinal);
                }
            }
            finally
            {
                holder?.Dispose();
            }
        }

        [SkippableTheory]
        [InlineData("attribute")]
        [InlineData("property")]
        public void ACompressedFileIsRefusedUpFrontOrConvertedWithoutCompressionWhenAsked(string how)
        {
            // Before: a warning, then a failure half-way copying the btrfs.compression xattr (EINVAL).
            string dir = fs.NewDirectory(TestFs.Btrfs, "compressed");
            string file = Path.Combine(dir, "vm.img");
            FileBuilder.WriteNew(file, Array.Empty<byte>());
            if (how == "attribute")
            {
                Shell.Run("chattr", "+c", file);
            }
            else
            {
                Shell.Run("btrfs", "property", "set", file, "compression", "zstd");
            }

            FileBuilder.WriteAt(file, 0, FileBuilder.Text(512 * 1024));
            FileFacts before = FileFacts.Of(file);
            string[] listing = FileFacts.Listing(dir);

            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f" + Yes, ("f", file));
            ErrorRecord e = Assert.Single(r.Errors);
            Assert.Equal("NoCowConflictsWithCompression,Btrfs.Commands.ConvertToNoCowCommand", e.FullyQualifiedErrorId);
            Assert.Contains("-DropCompression", e.Exception.Message, StringComparison.Ordinal);
            Assert.Empty(r.Warnings);
            Assert.Equal(before, FileFacts.Of(file));
            Assert.Equal(listing, FileFacts.Listing(dir));

            r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $f -DropCompression" + Yes, ("f", file));
            Assert.Empty(r.Errors);
            Assert.Contains("-DropCompression", Assert.Single(r.Warnings).Message, StringComparison.Ordinal);
            Assert.True(FileFacts.HasNoCow(file));
            Assert.DoesNotContain('c', FileFacts.Attributes(file));
            Assert.DoesNotContain("btrfs.compression", Xattrs(file), StringComparison.Ordinal);
            Assert.Equal(before.Sha256, FileFacts.Hash(file));
            Assert.Equal(listing, FileFacts.Listing(dir));
        }

        [SkippableTheory]
        [InlineData("+c")]
        [InlineData("property")]
        [InlineData("+m")]
        public void InADirectoryThatCompressesNewFilesConversionsSwapfilesAndEmptyFilesBecomeNoCow(string how)
        {
            // Before: the new copy inherited compression (or "do not compress") from its directory, and the one
            // FS_IOC_SETFLAGS that turned it off and NOCOW on was refused (EINVAL): ConvertTo-NoCow, even with
            // -DropCompression, New-BtrfsSwapfile and Set-NoCow on an empty file always failed there. Found by a
            // hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "compressing-dir");
            string plain = Path.Combine(dir, "plain.img");
            FileBuilder.WriteNew(plain, FileBuilder.Text(256 * 1024)); // written before the directory compresses
            if (how == "property")
            {
                Shell.Run("btrfs", "property", "set", dir, "compression", "zstd");
            }
            else
            {
                Shell.Run("chattr", how, dir);
            }

            string inherited = Path.Combine(dir, "inherited.img"), empty = Path.Combine(dir, "empty.img"), swap = Path.Combine(dir, "swap");
            FileBuilder.WriteNew(inherited, FileBuilder.Text(256 * 1024));
            FileBuilder.WriteNew(empty, Array.Empty<byte>());
            string plainHash = FileFacts.Hash(plain), inheritedHash = FileFacts.Hash(inherited);
            string drop = how == "+m" ? string.Empty : " -DropCompression";

            PwshResult r = Pwsh.Run(
                "ConvertTo-NoCow -LiteralPath $p" + Yes + "; ConvertTo-NoCow -LiteralPath $i" + drop + Yes + "; " +
                "$null = New-BtrfsSwapfile -Path $s -Size 4MB -Confirm:$false",
                ("p", plain), ("i", inherited), ("e", empty), ("s", swap));
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));

            // An empty file that inherited "do not compress" (+m) becomes NOCOW; one that inherited compression is
            // refused and left as it is (Set-NoCow does not drop compression unasked).
            PwshResult set = Pwsh.Run("Set-NoCow -LiteralPath $e", ("e", empty));
            if (how != "+m")
            {
                Assert.Equal("NoCowConflictsWithCompression", Assert.Single(set.ErrorIds));
                Assert.False(FileFacts.HasNoCow(empty));
                Shell.Run("chattr", "-c", empty);
                set = Pwsh.Run("Set-NoCow -LiteralPath $e", ("e", empty));
            }

            Assert.Empty(set.Errors);
            foreach (string file in new[] { plain, inherited, empty, swap })
            {
                Assert.True(FileFacts.HasNoCow(file), file);
                Assert.DoesNotContain('c', FileFacts.Attributes(file));
                Assert.DoesNotContain('m', FileFacts.Attributes(file));
                Assert.DoesNotContain("btrfs.compression", Xattrs(file), StringComparison.Ordinal);
            }

            Assert.Equal(plainHash, FileFacts.Hash(plain));
            Assert.Equal(inheritedHash, FileFacts.Hash(inherited));

            // Back to COW, the copy keeps the original's setting, not the directory's (before: it came back
            // compressed, +c and the property, though it never was; a hostile review).
            Assert.Empty(Pwsh.Run("ConvertFrom-NoCow -LiteralPath $p" + Yes, ("p", plain)).Errors);
            Assert.False(FileFacts.HasNoCow(plain));
            Assert.DoesNotContain('c', FileFacts.Attributes(plain));
            Assert.DoesNotContain('m', FileFacts.Attributes(plain));
            Assert.DoesNotContain("btrfs.compression", Xattrs(plain), StringComparison.Ordinal);
            Assert.Equal(plainHash, FileFacts.Hash(plain));
            Assert.True(Pwsh.Run("Test-BtrfsSwapfile -LiteralPath $s", ("s", swap)).Objects<bool>().Single());
            Assert.Equal(new[] { "empty.img", "inherited.img", "plain.img", "swap" }, Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }

        [SkippableFact]
        public void DataACompressMountCompressedIsConvertedWithAWarningThatTheCopyIsNot()
        {
            // Before: converted without a word, though the copy took ~30 times the space on disk (the README said
            // compressed files are refused; only a compression attribute or property is). Found by a newcomer review.
            string dir = fs.NewDirectory(TestFs.BtrfsZstd, "mount-compressed");
            string log = Path.Combine(dir, "app.log"), random = Path.Combine(dir, "random.img");
            FileBuilder.WriteNew(log, System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 100_000).Select(i => $"line {i} of a compressible log\n"))));
            FileBuilder.WriteNew(random, FileBuilder.RandomBytes(1 << 20, 7)); // btrfs stores it uncompressed
            Shell.Run("sync");
            string hash = FileFacts.Hash(log);
            PwshResult r = Pwsh.Run("ConvertTo-NoCow -LiteralPath $l, $r" + Yes, ("l", log), ("r", random));
            Assert.Empty(r.Errors);
            WarningRecord w = Assert.Single(r.Warnings);
            Assert.Contains("'" + log + "' is stored compressed (compress=zstd", w.Message, StringComparison.Ordinal);
            Assert.Contains("the NOCOW copy stores it uncompressed", w.Message, StringComparison.Ordinal);
            Assert.True(FileFacts.HasNoCow(log));
            Assert.True(FileFacts.HasNoCow(random));
            Assert.Equal(hash, FileFacts.Hash(log));
        }
    }
}
