namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A piped object reaches exactly the file it names: every object this module emits that names a
    /// file (and Get-ChildItem's and Get-Item's) binds to the receiving cmdlet's -LiteralPath, never
    /// wildcard-expanded through -Path. Every producer → consumer pair of the module, in a real pwsh,
    /// with names holding '[', ']', '*' and '?' and a look-alike file beside each that the wildcard
    /// would match; the look-alikes must never be reported, read for output or changed.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class LiteralBindingTests(LoopFileSystems fs)
    {
        private static readonly string[] Producers =
        {
            "Get-ChildItem -LiteralPath $Q",
            "Get-Item -LiteralPath $Q",
            "Test-NoCow -LiteralPath $Q -Detailed",
            "Measure-Fragmentation -LiteralPath $Q",
            "Get-BtrfsExtent -LiteralPath $Q",
            "Get-BtrfsExtent -LiteralPath $Q -Exact",
            "Measure-BtrfsUsage -LiteralPath $Q",
            "Invoke-BtrfsDefrag -LiteralPath $Q -Confirm:$false",
            "Test-BtrfsSwapfile -LiteralPath $Q -Detailed",
            "Get-BtrfsExtent -LiteralPath $Q | Select-Object -First 1 | Get-BtrfsExtentOwner",
            "New-BtrfsReflink -LiteralPath $Q -Destination $Copies -Force -Fallback Copy -Confirm:$false",
            "ConvertTo-NoCow -LiteralPath $Q -PassThru -Confirm:$false",
            "ConvertFrom-NoCow -LiteralPath $Q -PassThru -Confirm:$false",
        };

        private static readonly string[] Consumers =
        {
            "Test-NoCow -Detailed",
            "Measure-Fragmentation",
            "Get-BtrfsExtent",
            "Measure-BtrfsUsage",
            "Invoke-BtrfsDefrag -Confirm:$false",
            "Test-BtrfsSwapfile -Detailed",
            "Show-ExtentMap -Width 20 -Rows 1",
            "New-BtrfsReflink -Destination $Copies2 -Force -Fallback Copy -Confirm:$false",
            "Invoke-BtrfsDedupe -Destination $Twin -Confirm:$false",
            "Get-BtrfsExtentOwner",
            "ConvertTo-NoCow -PassThru -Confirm:$false",
            "ConvertFrom-NoCow -PassThru -Confirm:$false",
            "Set-NoCow -PassThru",
        };

        [SkippableFact]
        public void APipedPathPropertyOrStringIsUsedLiterallyWhileACommandLinePatternExpands()
        {
            // Before: an object with only a Path property (no PSPath) bound to -Path and was expanded as a
            // pattern: [pscustomobject]@{ Path = 'x[1].img' } reached x1.img and converted it.
            string dir = fs.NewDirectory(TestFs.Btrfs, "path-property");
            string named = Path.Combine(dir, "x[1].img"), lookAlike = Path.Combine(dir, "x1.img");
            FileBuilder.Chunks(named, 2, 4096, 8192, seed: 1);
            FileBuilder.Chunks(lookAlike, 2, 4096, 8192, seed: 2);
            FileFacts before = FileFacts.Of(lookAlike);

            PwshResult r = Pwsh.Run("[pscustomobject]@{ Path = $n } | ConvertTo-NoCow -PassThru -Confirm:$false; $n | Test-NoCow -Detailed", ("n", named));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { named, named }, r.Objects<Btrfs.Core.NoCowStatus>().Select(o => o.Path));
            Assert.Equal(before, FileFacts.Of(lookAlike));

            // A pattern typed on the command line still expands: x[1].img matches x1.img only.
            Assert.Equal(new[] { lookAlike }, Pwsh.Run("Test-NoCow -Path $p -Detailed", ("p", Path.Combine(dir, "x[1].img"))).Objects<Btrfs.Core.NoCowStatus>().Select(o => o.Path));
        }

        [SkippableFact]
        public void APipedObjectWithAPathAndOtherPropertiesBindsItsPathNotItsText()
        {
            // Before: a numeric Length (or LogicalOffset) bound first, and the object itself became the path:
            // "Cannot open '/…/@{Path=/…/x[1].img; Length=4096}'" (a hostile review). From Select-Object, a
            // pscustomobject, and JSON read back.
            string dir = fs.NewDirectory(TestFs.Btrfs, "path-and-length");
            string named = Path.Combine(dir, "x[1].img"), lookAlike = Path.Combine(dir, "x1.img");
            FileBuilder.Chunks(named, 2, 4096, 8192, seed: 3);
            FileBuilder.Chunks(lookAlike, 2, 4096, 8192, seed: 4);
            foreach (string pipe in new[]
            {
                "[pscustomobject]@{ Path = $n; Length = [long]4096 }",
                "Get-BtrfsExtent -LiteralPath $n | Select-Object Path, LogicalOffset, Length",
                "Get-BtrfsExtent -LiteralPath $n | ConvertTo-Json | ConvertFrom-Json",
            })
            {
                PwshResult r = Pwsh.Run(pipe + " | Get-BtrfsExtentOwner -Detailed", ("n", named));
                Assert.True(r.Errors.Count == 0, pipe + ": " + string.Join("\n", r.Errors));
                Assert.NotEmpty(r.Output);
                Assert.All(r.Objects<Btrfs.Core.BtrfsExtentOwner>(), o => Assert.Equal(named, o.Path));
            }

            PwshResult lengths = Pwsh.Run("[pscustomobject]@{ Path = $n; Length = [long]4096 } | Measure-Fragmentation", ("n", named));
            Assert.Empty(lengths.Errors);
            Assert.Equal(named, Assert.Single(lengths.Objects<Btrfs.Core.FragmentationReport>()).Path);

            // Such an object given on the command line names its file literally too (a review: x[1].img reached x1.img),
            // and an object that also has LiteralPath (or LP) binds that, as before.
            foreach (string script in new[]
            {
                "Measure-Fragmentation -Path ([pscustomobject]@{ Path = $n })",
                "[pscustomobject]@{ Path = $l; LiteralPath = $n } | Measure-Fragmentation",
                "[pscustomobject]@{ Path = $l; LP = $n } | Measure-Fragmentation",
            })
            {
                PwshResult r = Pwsh.Run(script, ("n", named), ("l", lookAlike));
                Assert.True(r.Errors.Count == 0, script + ": " + string.Join("\n", r.Errors));
                Assert.Equal(named, Assert.Single(r.Objects<Btrfs.Core.FragmentationReport>()).Path);
            }
        }

        [SkippableFact]
        public void AnObjectOfThisModuleThatNamesNoFileIsRefusedNotTakenAsItsTypeName()
        {
            // Before: an object without a Path (Invoke-BtrfsDedupe's result, a -Summary, a -ByCompression row) bound to
            // -Path as its text, its type name: `Invoke-BtrfsDedupe a b | ConvertTo-NoCow` rewrote a file named
            // "Btrfs.Core.DedupeResult" in the current directory. Found by a hostile review. Now a dedupe result binds
            // its Destination (one result per destination), and the rest are ObjectNamesNoFile errors.
            string dir = fs.NewDirectory(TestFs.Btrfs, "nofile");
            string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b");
            FileBuilder.Chunks(a, 4, 4096, 8192, seed: 1);
            File.Copy(a, b);
            string[] bystanders = { "Btrfs.Core.DedupeResult", "Btrfs.Core.FragmentationSummary", "Btrfs.Core.BtrfsUsageRow", "System.Collections.Hashtable" };
            foreach (string name in bystanders)
            {
                FileBuilder.Chunks(Path.Combine(dir, name), 4, 4096, 8192, seed: 2);
            }

            FileFacts[] before = bystanders.Select(n => FileFacts.Of(Path.Combine(dir, n))).ToArray();
            PwshResult converted = Pwsh.Run("Set-Location -LiteralPath $Dir; Invoke-BtrfsDedupe ./a ./b -Confirm:$false | ConvertTo-NoCow -Confirm:$false -PassThru", ("Dir", dir));
            Assert.Empty(converted.Errors);
            Assert.Equal(b, Assert.Single(converted.Objects<Btrfs.Core.NoCowStatus>()).Path);
            string c = Path.Combine(dir, "c");
            FileBuilder.Chunks(c, 4, 4096, 8192, seed: 1); // as a (b is NOCOW now)
            FileBuilder.Chunks(Path.Combine(dir, "Btrfs.Core.NoCowStatus"), 4, 4096, 8192, seed: 2); // a bystander named like the type
            PwshResult given = Pwsh.Run(
                "Set-Location -LiteralPath $Dir; $r = Invoke-BtrfsDedupe ./a ./c -Confirm:$false; Test-NoCow -Path $r, $r -Detailed; Test-NoCow -LiteralPath $r -Detailed; "
                + "$st = Test-NoCow -LiteralPath ./a, ./c -Detailed; Test-NoCow -Path $st.Where({ $_.Path -like '*/c' }) -Detailed; Test-NoCow -LiteralPath ([System.Collections.Generic.List[object]]$st) -Detailed; Test-NoCow -Path ([System.Collections.ArrayList]$st) -Detailed",
                ("Dir", dir));
            Assert.Empty(given.Errors);
            Assert.Equal(new[] { c, c, c, c, a, c, a, c }, given.Objects<Btrfs.Core.NoCowStatus>().Select(x => x.Path));

            foreach (string command in new[]
            {
                "Measure-Fragmentation . -Recurse -Summary | ConvertTo-NoCow -Confirm:$false",
                "Measure-BtrfsUsage ./a -ByCompression | Select-Object -First 1 | ConvertTo-NoCow -Confirm:$false",
                "Measure-Fragmentation . -Recurse -Summary | Export-Clixml ./s.xml; Import-Clixml ./s.xml | Invoke-BtrfsDefrag -Confirm:$false",
                "Measure-Fragmentation . -Recurse -Summary | New-BtrfsSubvolume",

                // Read back from JSON or CSV: objects of properties alone, none a path (a hostile review: looked up as
                // '<dir>/@{Files=10; ...}').
                "Measure-Fragmentation . -Recurse -Summary | ConvertTo-Json | ConvertFrom-Json | Get-BtrfsExtent",
                "Measure-BtrfsUsage ./a -ByCompression | Select-Object -First 1 | ConvertTo-Csv | ConvertFrom-Csv | Measure-Fragmentation",

                // A hashtable without a Path key: its text is its type name (a hostile review: a file named
                // "System.Collections.Hashtable" in the current directory was converted).
                "@{ Files = 1 } | ConvertTo-NoCow -Confirm:$false",
                "New-BtrfsReflink -Path @{ Files = 1 } -Destination ./out",

                // Given on the command line, one or several (a review: bound as their type names there).
                "$s = Measure-Fragmentation . -Recurse -Summary; ConvertTo-NoCow -LiteralPath $s -Confirm:$false",
            })
            {
                PwshResult r = Pwsh.Run("Set-Location -LiteralPath $Dir; " + command, ("Dir", dir));
                var e = Assert.Single(r.Errors);
                Assert.True(e.FullyQualifiedErrorId.StartsWith("ObjectNamesNoFile,", StringComparison.Ordinal), command + ": " + e.FullyQualifiedErrorId + " " + e);
                Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
                Assert.Empty(r.Output);
                Assert.Equal(before, bystanders.Select(n => FileFacts.Of(Path.Combine(dir, n))).ToArray());
                Assert.False(Directory.Exists(Path.Combine(dir, "Btrfs.Core.FragmentationSummary")), command);
            }

            // A legend line (no path), live or read back with Import-Clixml, reaches no file, not even one named like its
            // text (a hostile review: a read-back PSPath of its text bound -LiteralPath and rewrote such a file).
            // A hashtable with a Path key names that file, literally.
            PwshResult byKey = Pwsh.Run("Set-Location -LiteralPath $Dir; @{ Path = $a } | Test-NoCow -Detailed", ("Dir", dir), ("a", a));
            Assert.Empty(byKey.Errors);
            Assert.Equal(a, Assert.Single(byKey.Objects<Btrfs.Core.NoCowStatus>()).Path);

            string legend = Pwsh.Run("\"$((Show-ExtentMap -LiteralPath $f)[-2])\"", ("f", a)).Output.Single().ToString();
            string decoy = Path.Combine(dir, legend);
            FileBuilder.Chunks(decoy, 4, 4096, 8192, seed: 3);
            FileFacts decoyBefore = FileFacts.Of(decoy);
            foreach (string command in new[]
            {
                "(Show-ExtentMap -LiteralPath ./a)[-2] | ConvertTo-NoCow -Confirm:$false",
                "$l = (Show-ExtentMap -LiteralPath ./a)[-2]; $l | Export-Clixml ./l.xml; Import-Clixml ./l.xml | ConvertTo-NoCow -Confirm:$false",
            })
            {
                PwshResult r = Pwsh.Run("Set-Location -LiteralPath $Dir; " + command, ("Dir", dir));
                Assert.StartsWith("ObjectNamesNoFile,", Assert.Single(r.Errors).FullyQualifiedErrorId, StringComparison.Ordinal); // as about_Btrfs says (its PSPath is empty; before: the binder's ParameterArgumentValidationError)
                Assert.Empty(r.Output);
                Assert.Equal(decoyBefore, FileFacts.Of(decoy));
            }
        }

        [SkippableFact]
        public void APathWhoseDotDotTheKernelReadsElsewhereIsRefusedNotReadByTheText()
        {
            // Before: Remove-BtrfsSubvolume -LiteralPath 'missing/../T' deleted T, and 'lnk/../T' (lnk a link to Q/X)
            // deleted T too, where the kernel (ls, btrfs subvolume delete) finds nothing: PowerShell reads '..' by the
            // text. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "dotdot");
            string volume = Path.Combine(dir, "T"), file = Path.Combine(volume, "vm.img");
            Shell.Run("btrfs", "subvolume", "create", volume);
            Directory.CreateDirectory(Path.Combine(dir, "Q", "X"));
            Directory.CreateDirectory(Path.Combine(dir, "real"));
            File.CreateSymbolicLink(Path.Combine(dir, "lnk"), Path.Combine(dir, "Q", "X"));
            FileBuilder.Chunks(file, 2, 4096, 8192, seed: 1);
            FileBuilder.Chunks(Path.Combine(dir, "src.img"), 2, 4096, 8192, seed: 2);
            FileFacts before = FileFacts.Of(file);
            string id = Shell.Run("btrfs", "inspect-internal", "rootid", volume).Trim();

            string[] commands =
            {
                "Remove-BtrfsSubvolume -LiteralPath ($Dir + '/missing/../T') -Confirm:$false",
                "Set-Location -LiteralPath $Dir; Remove-BtrfsSubvolume -LiteralPath 'lnk/../T' -Confirm:$false",
                "Remove-BtrfsSubvolume -Path ($Dir + '/lnk/../[T]') -Confirm:$false",
                "ConvertTo-NoCow -LiteralPath ($Dir + '/lnk/../T/vm.img') -Confirm:$false",
                "New-BtrfsReflink -LiteralPath ($Dir + '/src.img') -Destination ($Dir + '/lnk/../T/vm.img') -Force -Confirm:$false",
                "$null = New-PSDrive D -PSProvider FileSystem -Root $Dir; Invoke-BtrfsDefrag -LiteralPath 'D:/missing/../T/vm.img' -Confirm:$false",
                "(Get-PSProvider FileSystem).Home = $Dir; ConvertTo-NoCow -LiteralPath '~/lnk/../T/vm.img' -Confirm:$false",
                "New-BtrfsSubvolume ($Dir + '/missing/../made')",

                // '..' after a wildcard: PowerShell takes it away by the text before matching (a review).
                "Remove-BtrfsSubvolume -Path ($Dir + '/nosuch*/../T') -Confirm:$false",
                "Remove-BtrfsSubvolume -Path ($Dir + '/l*/../T') -Confirm:$false",
            };
            foreach (string command in commands)
            {
                PwshResult r = Pwsh.Run(command, ("Dir", dir));
                var e = Assert.Single(r.Errors);
                Assert.True(e.FullyQualifiedErrorId.StartsWith("AmbiguousParentPath,", StringComparison.Ordinal), command + ": " + e.FullyQualifiedErrorId + " " + e);
                Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
                Assert.Equal(id, Shell.Run("btrfs", "inspect-internal", "rootid", volume).Trim());
                Assert.Equal(before, FileFacts.Of(file));
                Assert.False(Directory.Exists(Path.Combine(dir, "made")), command);
            }

            // Where both readings lead to the same directory, '..' is taken as always; a provider-qualified path (a piped
            // object's PSPath) is read as written, a name with backslashes and dots too (a review: it was refused).
            File.WriteAllBytes(Path.Combine(dir, "x\\..\\f1"), new byte[4096]);
            PwshResult same = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath ($Dir + '/real/../T') -WhatIf; Test-NoCow -Path ($Dir + '/real/../T/vm.im?'); Get-ChildItem -LiteralPath $Dir -Filter 'x*' | Test-NoCow", ("Dir", dir));
            Assert.Empty(same.Errors);
            Assert.Equal(new[] { false, false }, same.Objects<bool>());
        }

        [SkippableFact]
        public void APlainPathWhoseBackslashNamesAnotherFileIsRefusedNotReadAsASeparator()
        {
            // Before: (Get-BtrfsSubvolume ... -Recurse).Path | Remove-BtrfsSubvolume deleted 'victim' for the
            // subvolume 'deep/..\victim': PowerShell reads the backslash of a plain string as a separator.
            // Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "backslash");
            string deep = Directory.CreateDirectory(Path.Combine(dir, "deep")).FullName;
            string victimVolume = Path.Combine(dir, "victim"), namedVolume = Path.Combine(deep, "..\\victim");
            Shell.Run("btrfs", "subvolume", "create", victimVolume);
            Shell.Run("btrfs", "subvolume", "create", namedVolume);
            string victimFile = Path.Combine(victimVolume, "vm.img"), namedFile = Path.Combine(namedVolume, "vm.img");
            FileBuilder.Chunks(victimFile, 2, 4096, 8192, seed: 1);
            FileBuilder.Chunks(namedFile, 2, 4096, 8192, seed: 2);
            FileFacts victimBefore = FileFacts.Of(victimFile), namedBefore = FileFacts.Of(namedFile);
            string victimId = Shell.Run("btrfs", "inspect-internal", "rootid", victimVolume).Trim();

            string[] commands =
            {
                "(Get-BtrfsSubvolume -LiteralPath $Deep -Recurse | Where-Object Name -eq '..\\victim').Path | Remove-BtrfsSubvolume -Confirm:$false",
                "Remove-BtrfsSubvolume -LiteralPath $NamedVolume -Confirm:$false",
                "$NamedFile | ConvertTo-NoCow -Confirm:$false",
                "ConvertTo-NoCow -Path $NamedFile -Confirm:$false",
                "Invoke-BtrfsDefrag -LiteralPath $NamedFile -Confirm:$false",
                "New-BtrfsReflink -LiteralPath (Join-Path $Dir 'src.img') -Destination $NamedFile -Force -Confirm:$false",
                "Invoke-BtrfsDedupe -LiteralPath (Join-Path $Dir 'src.img') -Destination $NamedFile -Confirm:$false",
                "New-BtrfsSnapshot -LiteralPath $NamedVolume -Destination (Join-Path $Dir 'snap') -Confirm:$false",

                // Through a drive, '~', and a pattern (before, each went past the check and reached 'victim').
                "$null = New-PSDrive D -PSProvider FileSystem -Root $Dir; Remove-BtrfsSubvolume -Path 'D:/deep/..\\victim' -Confirm:$false",
                "$null = New-PSDrive D -PSProvider FileSystem -Root $Dir; ConvertTo-NoCow -LiteralPath 'D:deep/..\\victim/vm.img' -Confirm:$false",
                "$null = New-PSDrive D -PSProvider FileSystem -Root $Dir; New-BtrfsReflink -LiteralPath (Join-Path $Dir 'src.img') -Destination 'D:/deep/..\\victim/vm.img' -Force -Confirm:$false",
                "(Get-PSProvider FileSystem).Home = $Dir; Remove-BtrfsSubvolume -Path '~/deep/..\\victim' -Confirm:$false",
                "Set-Location -LiteralPath $Dir; Remove-BtrfsSubvolume -Path 'deep/..\\vic*m' -Confirm:$false",
                "Remove-BtrfsSubvolume -Path ($Deep + '/..\\victi[m]') -Confirm:$false",
                "Invoke-BtrfsDedupe -LiteralPath (Join-Path $Dir 'src.img') -Destination ($Deep + '/..\\vic*/vm.img') -Confirm:$false",

                // A pattern without a backslash that matches the name with one: PowerShell's expansion gave it back as
                // 'deep/../victim' (before: these reached 'victim'; a hostile test).
                "Set-Location -LiteralPath $Deep; ConvertTo-NoCow -Path '..?victim/vm.img' -Confirm:$false",
                "Invoke-BtrfsDefrag -Path ($Deep + '/.*victim/vm.img') -Confirm:$false", // (a hidden name: matched by a pattern that begins with '.')
                "Remove-BtrfsSubvolume -Path ($Deep + '/.*') -Confirm:$false",

                // Provider-qualified, and a drive path written with backslashes for separators: PowerShell's expansion reads
                // both the same way (before, neither was looked at; a hostile test).
                "Invoke-BtrfsDefrag -Path ('Microsoft.PowerShell.Core\\FileSystem::' + $Deep + '/.*victim/vm.img') -Confirm:$false",
                "$null = New-PSDrive D -PSProvider FileSystem -Root $Dir; ConvertTo-NoCow -Path 'D:\\deep\\..?victim\\vm.img' -Confirm:$false",
            };
            FileBuilder.Chunks(Path.Combine(dir, "src.img"), 2, 4096, 8192, seed: 1);
            foreach (string command in commands)
            {
                PwshResult r = Pwsh.Run(
                    command,
                    ("Dir", dir), ("Deep", deep), ("NamedVolume", namedVolume), ("NamedFile", namedFile));
                var e = Assert.Single(r.Errors);
                Assert.True(e.FullyQualifiedErrorId.StartsWith("AmbiguousBackslashPath,", StringComparison.Ordinal), command + ": " + e.FullyQualifiedErrorId + " " + e);
                Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
                Assert.Contains("Microsoft.PowerShell.Core\\FileSystem::" + namedVolume, e.Exception.Message, StringComparison.Ordinal);
                Assert.Equal(victimId, Shell.Run("btrfs", "inspect-internal", "rootid", victimVolume).Trim());
                Assert.Equal(victimBefore, FileFacts.Of(victimFile));
                Assert.Equal(namedBefore, FileFacts.Of(namedFile));
                Assert.False(Directory.Exists(Path.Combine(dir, "snap")), command);
            }

            // A file with a backslash where a directory is looked for, and a hidden one a '*' does not match, are no
            // ambiguity: PowerShell's expansion finds nothing through them (before the review, both refused the pattern).
            string plain = Directory.CreateDirectory(Path.Combine(dir, "plain")).FullName;
            FileBuilder.Chunks(Path.Combine(Directory.CreateDirectory(Path.Combine(plain, "s")).FullName, "vm.img"), 2, 4096, 8192, seed: 5);
            File.WriteAllText(Path.Combine(plain, "x\\y"), "file");
            File.WriteAllText(Path.Combine(plain, "s", ".h\\vm.img"), "hidden");
            PwshResult fine = Pwsh.Run("Test-NoCow -Path ($P + '/*/vm.img'); Test-NoCow -Path ($P + '/s/*vm.img')", ("P", plain));
            Assert.Empty(fine.Errors);
            Assert.Equal(2, fine.Output.Count);

            // A "::" inside a plain path makes it no provider-qualified one (before: such a path skipped the check, and
            // './p::q/a\g' reached p::q/a/g; a hostile review).
            string colons = Directory.CreateDirectory(Path.Combine(dir, "p::q", "a")).FullName;
            FileBuilder.Chunks(Path.Combine(colons, "g"), 2, 4096, 8192, seed: 3);
            FileBuilder.Chunks(Path.Combine(dir, "p::q", "a\\g"), 2, 4096, 8192, seed: 4);
            FileFacts colonsBefore = FileFacts.Of(Path.Combine(colons, "g"));
            PwshResult colon = Pwsh.Run("Set-Location -LiteralPath $Dir; ConvertTo-NoCow -Path './p::q/a\\g' -Confirm:$false", ("Dir", dir));
            Assert.Equal("AmbiguousBackslashPath", Assert.Single(colon.ErrorIds));
            Assert.Equal(colonsBefore, FileFacts.Of(Path.Combine(colons, "g")));

            // The object itself, or the provider-qualified path the error suggests, reaches the name with the
            // backslash; where only one of the two exists, that one is used (as PowerShell reads it).
            PwshResult piped = Pwsh.Run(
                "Get-BtrfsSubvolume -LiteralPath $Deep -Recurse | Where-Object Name -eq '..\\victim' | Remove-BtrfsSubvolume -Confirm:$false -PassThru | ForEach-Object Path; " +
                "Test-NoCow -LiteralPath ($Deep + '/..\\victim/vm.img') -Detailed | ForEach-Object Path",
                ("Deep", deep));
            Assert.Empty(piped.Errors);
            Assert.Equal(new[] { namedVolume, victimFile }, piped.Output.Select(o => o.ToString()));
            Assert.False(Directory.Exists(namedVolume));
            Assert.Equal(victimBefore, FileFacts.Of(victimFile));
        }

        [SkippableFact]
        public void EveryPipedObjectReachesExactlyTheFileItNames()
        {
            // Before: the Path property bound to -Path, so 'x[1].img' (a character class) changed x1.img.
            string dir = fs.NewDirectory(TestFs.Btrfs, "literal");
            string copies = Directory.CreateDirectory(Path.Combine(dir, "copies")).FullName;
            string copies2 = Directory.CreateDirectory(Path.Combine(dir, "copies2")).FullName;
            // A backslash is a separator to PowerShell on Linux but an ordinary character in a file name:
            // "drop/..\\bs.img" must never become ../bs.img (the look-alike one directory up).
            (string Name, string LookAlike)[] names = { ("x[1].img", "x1.img"), ("a*b.img", "aXb.img"), ("q?.img", "qq.img"), ("drop/..\\bs.img", "bs.img") };
            Directory.CreateDirectory(Path.Combine(dir, "drop"));
            string[] lookAlikes = names.SelectMany(n => new[] { Path.Combine(dir, n.LookAlike), Path.Combine(copies, n.LookAlike), Path.Combine(copies2, n.LookAlike) }).ToArray();
            foreach ((string name, string look) in names)
            {
                FileBuilder.Chunks(Path.Combine(dir, name), 4, 64 * 1024, 128 * 1024, seed: 3);
                foreach (string d in new[] { dir, copies, copies2 })
                {
                    FileBuilder.Chunks(Path.Combine(d, look), 4, 64 * 1024, 128 * 1024, seed: 5);
                }
            }

            string twin = Path.Combine(dir, "twin.img");
            FileBuilder.Chunks(twin, 4, 64 * 1024, 128 * 1024, seed: 3);
            FileFacts[] before = lookAlikes.Select(FileFacts.Of).ToArray();

            // Each pair prints "file<TAB>producer<TAB>consumer<TAB>path" for every path it reports (output Path or
            // Source, the path line of a picture, error targets); the lists are passed joined by newlines.
            string script = """
                $ErrorActionPreference = 'Continue'
                foreach ($F in $Files -split "`n") {
                    $Q = 'Microsoft.PowerShell.Core\FileSystem::' + $F  # typed literally, as Get-ChildItem would give it
                    foreach ($p in $Producers -split "`n") {
                        # PowerShell's own Get-ChildItem and Get-Item read the backslash as a separator even in a
                        # provider-qualified path (their FileInfo is ../bs.img): only this module's objects are checked there.
                        if ($F.Contains('\') -and $p -match '^Get-(ChildItem|Item) ') { foreach ($c in $Consumers -split "`n") { "$Q`t$p`t$c`t(skipped)" }; continue }
                        foreach ($c in $Consumers -split "`n") {
                            $Error.Clear()
                            $out = @(Invoke-Expression "$p | $c" 2>$null)
                            $errs = @($Error)
                            $paths = @($out | ForEach-Object { if ($_ -is [Btrfs.Core.ExtentMapLine]) { if ($_.Kind -eq 'File') { $_.Path } } elseif ($_.PSObject.Properties['Source']) { $_.Source } else { $_.Path } }) +
                                     @($errs | ForEach-Object { $_.TargetObject })
                            if ($paths.Count -eq 0) { "$Q`t$p`t$c`t<nothing>" }
                            foreach ($x in $paths) { "$Q`t$p`t$c`t$x" }
                        }
                    }
                }
                """;
            RealPwsh.Result r = RealPwsh.Run(
                script,
                null,
                ("Files", string.Join('\n', names.Select(n => Path.Combine(dir, n.Name)))),
                ("Producers", string.Join('\n', Producers)),
                ("Consumers", string.Join('\n', Consumers)),
                ("Copies", copies),
                ("Copies2", copies2),
                ("Twin", twin));
            Assert.True(r.ExitCode == 0, r.StdErr);
            string[][] rows = r.Lines.Select(l => l.Split('\t')).ToArray();
            Assert.All(rows, row => Assert.Equal(4, row.Length));
            Assert.Equal(names.Length * Producers.Length * Consumers.Length, rows.Select(row => (row[0], row[1], row[2])).Distinct().Count());
            Assert.DoesNotContain(rows, row => row[3] == "<nothing>");
            rows = rows.Where(row => row[3] != "(skipped)").ToArray();
            string[] reported = rows.Select(row => Path.GetFileName(row[3])).Distinct().ToArray();
            Assert.True(reported.Contains("..\\bs.img"), string.Join(" ; ", reported));
            string[] wrong = rows.Where(row => names.Any(n => Path.GetFileName(row[3]) == n.LookAlike)).Select(row => string.Join(" | ", row)).ToArray();
            Assert.True(wrong.Length == 0, "reached a look-alike:\n" + string.Join("\n", wrong));
            Assert.Contains("x[1].img", reported);

            Assert.Equal(before, lookAlikes.Select(FileFacts.Of).ToArray());
        }
    }
}
