namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// What remoting does to the objects: a PSSerializer round trip per output type, and Invoke-Command
    /// -HostName over SSH for real (an sshd of the test's own, pwsh as its powershell subsystem). Every output
    /// type keeps its property values and numeric types, enums their names, and its table or list view
    /// still applies to the deserialized object.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class RemotingTests(LoopFileSystems fs)
    {
        /// <summary>(type, the command that makes one, a pattern only its view shows: a column label that is not a property name, or a size formatted for reading).</summary>
        public static IEnumerable<object[]> Producers() => new[]
        {
            new object[] { "FileExtent", "& fallocate -l 1M ./pre.img; Get-BtrfsExtent ./pre.img", @"\bPhysical\b" },
            new object[] { "BtrfsExtentItem", "Get-BtrfsExtent ./vm.img -Exact", @"\bDiskLen\b" },
            new object[] { "NoCowStatus", "Test-NoCow ./vm.img -Detailed", "Directory: " },
            new object[] { "FragmentationReport", "Measure-Fragmentation ./frag.img", @"\bFragments\b" },
            new object[] { "FragmentationSummary", "Measure-Fragmentation ./frag.img, ./vm.img -Summary", @"Bytes\s+: [0-9.]+ (B|KiB|MiB)" },
            new object[] { "DefragResult", "Invoke-BtrfsDefrag ./frag.img", @"\bRewritten\b" },
            new object[] { "ReflinkResult", "New-BtrfsReflink ./vm.img ./vm-copy2.img", @"\bShared\b" },
            new object[] { "ReflinkTreeResult", "$null = New-Item -ItemType Directory ./t; Copy-Item ./vm.img ./t/; New-BtrfsReflink ./t ./t-copy -Recurse", @"\bFiles\b" },
            new object[] { "DedupeResult", "Invoke-BtrfsDedupe ./vm.img -Destination ./vm-dup.img", @"\bWasShared\b" },
            new object[] { "SwapfileStatus", "Test-BtrfsSwapfile ./vm.img -Detailed", @"\bValid\b" },
            new object[] { "BtrfsFileUsage", "Measure-BtrfsUsage ./vm.img", @"\bUncompr\b" },
            new object[] { "BtrfsUsageSummary", "Measure-BtrfsUsage ./vm.img, ./vm-clone.img -Summary", @"DiskBytes\s+: [0-9.]+ (B|KiB|MiB)" },
            new object[] { "BtrfsUsageRow", "Measure-BtrfsUsage ./vm.img -ByCompression | Where-Object Type -eq Total", "TOTAL" },
            new object[] { "BtrfsExtentOwner", "Get-BtrfsExtentOwner ./vm.img -Detailed", @"\bSubvolume\b" },
            new object[] { "BtrfsOwningFile", "Get-BtrfsExtentOwner ./vm.img", @"\bReferences\b" },
            new object[] { "BtrfsSubvolumeInfo", "Get-BtrfsSubvolume .", @"\bSnapshot\b" },
            new object[] { "BtrfsSubvolumeUsage", "$null = New-BtrfsSubvolume ./sv; Copy-Item ./vm.img ./sv/; Measure-BtrfsSubvolume ./sv", @"\bExclusive\b" },
            new object[] { "BtrfsDuplicateGroup", "& cp --reflink=never ./frag.img ./frag2.img; Find-BtrfsDuplicate ./frag.img, ./frag2.img", @"\bReclaimable\b" },
            new object[] { "DedupeGroupResult", "& cp --reflink=never ./frag.img ./frag2.img; Find-BtrfsDuplicate ./frag.img, ./frag2.img | Invoke-BtrfsDedupe -Confirm:$false", @"\bDeduped\b" },
            new object[] { "DefragRunSummary", "Invoke-BtrfsDefrag . -Recurse -Passes 1 -Confirm:$false | Where-Object { $_ -is [Btrfs.Core.DefragRunSummary] }", @"BytesRewritten\s+: [0-9.]+ (B|KiB|MiB)" },
            new object[] { "ExtentMapLine", "Show-ExtentMap ./vm.img -Width 16 -Rows 1", @"(?m)^/\S*/vm\.img\s*$" }, // the view prints the path line alone
        };

        [SkippableTheory]
        [MemberData(nameof(Producers))]
        public void EveryOutputTypeSurvivesARoundTripWithItsView(string type, string command, string viewPattern)
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "remoting");
            FileBuilder.Chunks(Path.Combine(dir, "vm.img"), 4, 64 << 10, 128 << 10);
            Shell.Run("cp", "--reflink=always", Path.Combine(dir, "vm.img"), Path.Combine(dir, "vm-clone.img"));
            Shell.Run("cp", "--reflink=never", Path.Combine(dir, "vm.img"), Path.Combine(dir, "vm-dup.img"));
            FileBuilder.Fragmented(Path.Combine(dir, "frag.img"), 2 << 20, 300);
            BtrfsProgs.Sync(dir);

            PwshResult r = Pwsh.Run(
                "$null = $ExecutionContext.SessionState.Path.SetLocation($dir)\n" +
                $"$o = @({command})[0]\n" +
                "$d = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($o))\n" +
                "$d.PSObject.TypeNames[0]\n" +
                "$o.PSObject.Properties | ForEach-Object { $n = $_.Name; $v = $_.Value; $dv = $d.$n; '{0}|{1}|{2}|{3}|{4}|{5}' -f $n, [string]$v, [string]$dv, $(if ($null -eq $v) { 'null' } else { $v.GetType().FullName }), $(if ($null -eq $dv) { 'null' } else { $dv.GetType().FullName }), $(if ($null -ne $v -and $v.GetType().IsEnum) { 'enum' } else { '' }) }\n" +
                "$o.PSObject.Properties | Where-Object { $_.Value -is [array] -and $_.Value.Count -gt 0 -and -not ($_.Value[0] -is [string] -or $_.Value[0].GetType().IsPrimitive) } | ForEach-Object { $n = $_.Name; 'nested|{0}|{1}|{2}|{3}' -f $n, ($_.Value[0].PSObject.Properties.Name -join ','), ($d.$n[0].PSObject.Properties.Name -join ','), ($d.$n[0] -is [string]) }\n" +
                "$headers | ForEach-Object { 'header|{0}|{1}|{2}' -f $_, ($null -ne $o.PSObject.Properties[$_]), ($null -ne $d.PSObject.Properties[$_]) }\n" +
                "$d | Out-Host\n" +
                "($o | Out-String -Width 80) -split \"`n\" | ForEach-Object { 'width|{0}|{1}' -f $_.TrimEnd().Length, $_.TrimEnd() }\n" +
                "$d3 = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($o, 3))\n" +
                "'same|' + [int](($o | Out-String -Width 80) -ceq ($d | Out-String -Width 80) -and ($o | Out-String -Width 80) -ceq ($d3 | Out-String -Width 80)) + '|' + ($o | Out-String -Width 80) + '|' + ($d3 | Out-String -Width 80)\n" +
                "$d | Add-Member PSComputerName 'web01'; $d | Add-Member PSShowComputerName $true; $remote = $d | Out-String -Width 80\n" +
                "'remote|' + [int]($remote -match 'web01') + '|' + ($remote -split \"`n\" | ForEach-Object { $_.TrimEnd().Length } | Measure-Object -Maximum).Maximum + '|' + $remote",
                new Dictionary<string, object?> { ["dir"] = dir, ["headers"] = ViewHeaders(type) },
                captureHost: true);
            Assert.True(r.Errors.Count == 0, string.Join("\n", r.Errors));
            Assert.Equal("Deserialized.Btrfs.Core." + type, r.Output[0].ToString());
            // Every column header of the view names a property (an alias where the header is short), live and deserialized.
            var headerRows = r.Output.Select(o => o.ToString()!).Where(l => l.StartsWith("header|", StringComparison.Ordinal)).ToList();
            Assert.Equal(ViewHeaders(type).Length, headerRows.Count);
            Assert.All(headerRows, h => Assert.EndsWith("|True|True", h));
            // Every view fits 80 columns.
            var widths = r.Output.Select(o => o.ToString()!).Where(l => l.StartsWith("width|", StringComparison.Ordinal)).Select(l => l.Split('|', 3)).ToList();
            Assert.NotEmpty(widths);
            Assert.All(widths, w => Assert.True(int.Parse(w[1], System.Globalization.CultureInfo.InvariantCulture) <= 80, $"{type}: {w[1]} columns: '{w[2]}'"));
            // The view shows the deserialized object as it shows the live one (before: a Flags column of numbers, and
            // "total" for TOTAL, where the view compared or interpolated an enum). Found by a hostile review.
            string same = r.Output.Select(o => o.ToString()!).Single(l => l.StartsWith("same|", StringComparison.Ordinal));
            Assert.True(same.StartsWith("same|1|", StringComparison.Ordinal), $"{type}: the view differs after the round trip: {same}");
            // From Invoke-Command, with the computer's name added as a column: shown whole, still within 80 columns
            // (before: views of fixed widths gave it one character per line, or no room at all; a hostile review).
            // Exceptions: a custom view (the extent map's picture) has no columns, so PowerShell shows no computer there; the
            // exact items' eight columns of numbers leave it a few characters (its name shows, wrapped).
            string[] remote = r.Output.Select(o => o.ToString()!).Single(l => l.StartsWith("remote|", StringComparison.Ordinal)).Split('|', 4);
            Assert.True(int.Parse(remote[2], System.Globalization.CultureInfo.InvariantCulture) <= 80, $"{type}: wider than 80 columns with the computer's name:\n{remote[3]}");
            if (type != "ExtentMapLine")
            {
                Assert.True(remote[1] == "1" || (type == "BtrfsExtentItem" && remote[3].Contains("web", StringComparison.Ordinal)), $"{type}: the computer's name is not shown whole within 80 columns:\n{remote[3]}");
            }

            // An element of a list property (a group's ranges) comes back as an object with its properties, not as its text
            // (before: remoting and Start-Job serialize one level deep, and a group's ranges became "path@offset+length",
            // so a group received from another computer could not be deduplicated; a hostile test).
            foreach (string[] n in r.Output.Select(o => o.ToString()!).Where(l => l.StartsWith("nested|", StringComparison.Ordinal)).Select(l => l.Split('|')))
            {
                Assert.True(n[4] == "False" && n[2].Split(',').All(p => n[3].Split(',').Contains(p)), $"{type}.{n[1]}: an element with {n[2]} came back with {n[3]} (text: {n[4]})");
            }

            Assert.Equal(type == "BtrfsDuplicateGroup" ? 1 : 0, r.Output.Count(o => o.ToString()!.StartsWith("nested|", StringComparison.Ordinal)));
            var rows = r.Output.Skip(1).Select(o => o.ToString()!).Where(l => !l.StartsWith("nested|", StringComparison.Ordinal) && !l.StartsWith("header|", StringComparison.Ordinal) && !l.StartsWith("width|", StringComparison.Ordinal) && !l.StartsWith("same|", StringComparison.Ordinal) && !l.StartsWith("remote|", StringComparison.Ordinal)).Select(l => l.Split('|')).ToList();
            Assert.NotEmpty(rows);
            foreach (string[] p in rows)
            {
                (string name, string value, string after, string typeBefore, string typeAfter, string isEnum) = (p[0], p[1], p[2], p[3], p[4], p[5]);
                Assert.True(value == after, $"{type}.{name}: '{value}' became '{after}'");
                if (isEnum.Length == 0 && !(typeBefore.EndsWith("[]", StringComparison.Ordinal) && typeAfter == "System.Collections.ArrayList"))
                {
                    Assert.True(typeBefore == typeAfter, $"{type}.{name}: {typeBefore} became {typeAfter}");
                }
            }

            Assert.Matches(viewPattern, r.HostText);
        }

        /// <summary>The column headers (a table's labels, or the property shown) or row labels (a list's) of the view for Btrfs.Core.<paramref name="type"/>.</summary>
        internal static string[] ViewHeaders(string type)
        {
            var doc = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "Btrfs.Format.ps1xml"));
            var view = doc.Descendants("View").Single(v => v.Element("ViewSelectedBy")!.Elements("TypeName").Any(t => t.Value == "Btrfs.Core." + type));
            // The group header ("Directory", "Path", "Subvolume") is a property too.
            var group = view.Element("GroupBy") is { } g ? new[] { g.Element("Label")?.Value ?? g.Element("PropertyName")!.Value } : Array.Empty<string>();
            var table = view.Descendants("TableControl").FirstOrDefault();
            if (table is not null)
            {
                var headers = table.Descendants("TableColumnHeader").ToList();
                var items = table.Descendants("TableColumnItem").ToList();
                return group.Concat(headers.Select((h, i) => h.Element("Label")?.Value ?? items[i].Element("PropertyName")!.Value)).ToArray();
            }

            // A list view shown out of band (a summary after a table) shows the computer's name itself, where remoting gave one.
            return group.Concat(view.Descendants("ListItem").Where(i => i.Element("ItemSelectionCondition")?.Value.Contains("PSShowComputerName", StringComparison.Ordinal) != true).Select(i => i.Element("Label")?.Value ?? i.Element("PropertyName")!.Value)).ToArray();
        }

        [SkippableFact]
        public void InvokeCommandOverSshBringsBackNumbersEnumsViewsAndErrorIds()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "ssh");
            string frag = Path.Combine(dir, "frag.img");
            FileBuilder.Fragmented(frag, 2 << 20, 300);
            FileBuilder.WriteNew(Path.Combine(dir, "dup[1].img"), FileBuilder.RandomBytes(1 << 20, 41));
            Shell.Run("cp", "--reflink=never", Path.Combine(dir, "dup[1].img"), Path.Combine(dir, "dup1.img"));
            BtrfsProgs.Sync(dir);
            using SshServer sshd = SshServer.Start();

            // The client imports the module too, for its views and for the pipeline back into it.
            string script = """
                $session = @{ HostName = '127.0.0.1'; Port = [int]$Port; UserName = 'root'; KeyFilePath = $Key; Options = @{ StrictHostKeyChecking = 'no'; UserKnownHostsFile = '/dev/null'; LogLevel = 'ERROR' } }
                $r = Invoke-Command @session -ScriptBlock {
                    param($manifest, $dir)
                    $ProgressPreference = 'SilentlyContinue'
                    Import-Module $manifest
                    Measure-Fragmentation -LiteralPath (Join-Path $dir 'frag.img')
                    Measure-Fragmentation -LiteralPath (Join-Path $dir 'missing.img')
                } -ArgumentList $ModuleManifest, $Dir -ErrorVariable remoteErrors 2>$null
                $o = @($r)[0]
                'type=' + $o.PSObject.TypeNames[0]
                'computer=' + $o.PSComputerName
                'size=' + $o.Size.GetType().Name + ':' + $o.Size
                'extents=' + $o.ExtentCount.GetType().Name
                'fs=' + $o.FileSystem + ':' + ($o.FileSystem -eq 'Btrfs')
                'error=' + (@($remoteErrors)[0].FullyQualifiedErrorId) + ':' + (@($remoteErrors)[0].CategoryInfo.Category)
                'view=' + (($o | Format-Table | Out-String -Width 120) -split "`n" | Where-Object { $_ -match 'Extents' } | Select-Object -First 1)
                'local=' + (@($r | Test-NoCow -Detailed)[0].Path)
                $groups = Invoke-Command @session -ScriptBlock {
                    param($manifest, $dir)
                    $ProgressPreference = 'SilentlyContinue'
                    Import-Module $manifest
                    Find-BtrfsDuplicate -LiteralPath (Join-Path $dir 'dup[1].img'), (Join-Path $dir 'dup1.img')
                } -ArgumentList $ModuleManifest, $Dir
                'ranges=' + (@($groups).Count) + ':' + (@($groups)[0].Ranges[0] -is [string]) + ':' + (@($groups)[0].Ranges[0].Inode -gt 0)
                $done = @($groups | Invoke-BtrfsDedupe -Confirm:$false)
                'deduped=' + $done.Count + ':' + $done[0].BytesDeduped
                """;
            RealPwsh.Result res = RealPwsh.Run(script, null, ("Port", sshd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("Key", sshd.KeyFile), ("Dir", dir));
            Assert.True(res.ExitCode == 0, res.StdOut + res.StdErr);
            var facts = res.Lines.Where(l => l.Contains('=', StringComparison.Ordinal)).ToDictionary(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);
            Assert.True(facts.ContainsKey("type"), res.StdOut + res.StdErr);
            Assert.Equal("Deserialized.Btrfs.Core.FragmentationReport", facts["type"]);
            Assert.Equal("127.0.0.1", facts["computer"]);
            Assert.Equal("Int64:" + (2 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), facts["size"]);
            Assert.Equal("Int64", facts["extents"]);
            Assert.Equal("Btrfs:True", facts["fs"]);
            Assert.Equal("PathNotFound,Btrfs.Commands.MeasureFragmentationCommand:ObjectNotFound", facts["error"]);
            Assert.Matches(@"Extents\s+Fragments", facts["view"]);
            Assert.Equal(frag, facts["local"]); // the deserialized object binds to -LiteralPath back home
            // A search on the other computer is deduplicated here: the group's ranges come back as ranges, inodes and
            // all (before: as text, and the group could not be bound; a hostile test).
            Assert.Equal("1:False:True", facts["ranges"]);
            Assert.Equal("1:" + (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), facts["deduped"]);
            Assert.Equal(1L << 20, Filefrag.Extents(Path.Combine(dir, "dup1.img")).Where(e => e.Flags.Contains("shared")).Sum(e => e.Length));
        }

        [SkippableFact]
        public void AQuestionTheCallingPowerShellCannotAskIsAClearErrorForEachFileOverSsh()
        {
            // ConfirmImpact High asks for every file, and through remoting the question goes to the host of
            // the PowerShell that called Invoke-Command. One whose input is closed (a CI job, cron) made the
            // first file an unexplained "Object reference not set to an instance of an object." that stopped
            // the command.
            string dir = fs.NewDirectory(TestFs.Btrfs, "ssh-unasked");
            string[] files = { Path.Combine(dir, "a.img"), Path.Combine(dir, "b.img") };
            foreach (string f in files)
            {
                FileBuilder.WriteNew(f, FileBuilder.RandomBytes(1 << 20, 5));
            }

            FileFacts[] before = files.Select(FileFacts.Of).ToArray();
            using SshServer sshd = SshServer.Start();
            string script = """
                $session = @{ HostName = '127.0.0.1'; Port = [int]$Port; UserName = 'root'; KeyFilePath = $Key; Options = @{ StrictHostKeyChecking = 'no'; UserKnownHostsFile = '/dev/null'; LogLevel = 'ERROR' } }
                Invoke-Command @session -ScriptBlock {
                    param($manifest, $a, $b)
                    $ProgressPreference = 'SilentlyContinue'
                    Import-Module $manifest
                    ConvertTo-NoCow -LiteralPath $a, $b
                    '@@after'
                } -ArgumentList $ModuleManifest, $A, $B -ErrorVariable e 2>$null
                $e | ForEach-Object { '@@' + $_.FullyQualifiedErrorId + '|' + $_.TargetObject + '|' + $_.Exception.Message }
                """;
            (string Name, string Value)[] vars = { ("Port", sshd.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("Key", sshd.KeyFile), ("A", files[0]), ("B", files[1]) };
            foreach ((RealPwsh.Result r, string why) in new[] { (RealPwsh.RunWithClosedInput(script, vars), "the input of the PowerShell that called it is at its end"), (RealPwsh.Run(script, null, vars), "the PowerShell that called it runs -NonInteractive") })
            {
                string[] lines = r.Marked;
                Assert.True(lines.Length == 3 && lines[0] == "after", r.StdOut + r.StdErr);
                for (int k = 0; k < 2; k++)
                {
                    string[] parts = lines[k + 1].Split('|');
                    Assert.True(parts[0] == "ConfirmationNotPossible,Btrfs.Commands.ConvertToNoCowCommand" && parts[1] == files[k], lines[k + 1]);
                    Assert.True(parts[2].Contains(why, StringComparison.Ordinal) && parts[2].Contains("Nothing was changed", StringComparison.Ordinal), lines[k + 1]);
                }

                Assert.Equal(before, files.Select(FileFacts.Of).ToArray());
                Assert.Equal(new[] { "a.img", "b.img" }, FileFacts.Listing(dir));
            }
        }
    }
}
