namespace Btrfs.Tests
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Text.RegularExpressions;
    using Btrfs.Core;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Get-BtrfsSubvolume against `btrfs subvolume list -puqcR` and `btrfs subvolume show`, field by field.</summary>
    [Collection(FileSystemCollection.Name)]
    public class SubvolumeTests(LoopFileSystems fs)
    {
        /// <summary>
        /// A filesystem of its own: sv (with a file), sv/inner (nested), a writable snapshot of sv, two
        /// read-only snapshots under snaps/, d/deep (a subvolume below a plain directory), and a snapshot of
        /// a snapshot.
        /// </summary>
        private static void Layout(string mnt)
        {
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(mnt, "sv"));
            FileBuilder.WriteNew(Path.Combine(mnt, "sv", "vm.img"), FileBuilder.RandomBytes(256 << 10, 1));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(mnt, "sv", "inner"));
            Shell.Run("btrfs", "subvolume", "snapshot", Path.Combine(mnt, "sv"), Path.Combine(mnt, "snap"));
            Directory.CreateDirectory(Path.Combine(mnt, "snaps"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", Path.Combine(mnt, "sv"), Path.Combine(mnt, "snaps", "ro-1"));
            FileBuilder.WriteAt(Path.Combine(mnt, "sv", "vm.img"), 0, FileBuilder.RandomBytes(4096, 2));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", Path.Combine(mnt, "sv"), Path.Combine(mnt, "snaps", "ro-2"));
            Directory.CreateDirectory(Path.Combine(mnt, "d"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(mnt, "d", "deep"));
            Shell.Run("btrfs", "subvolume", "snapshot", Path.Combine(mnt, "snap"), Path.Combine(mnt, "snap-of-snap"));
            Shell.Run("btrfs", "filesystem", "sync", mnt);
        }

        /// <summary>`btrfs subvolume list -puqcR`: one row per subvolume, by id.</summary>
        private static Dictionary<ulong, Dictionary<string, string>> ListedByProgs(string mnt)
        {
            var rows = new Dictionary<ulong, Dictionary<string, string>>();
            var row = new Regex(@"^ID (\d+) gen (\d+) cgen (\d+) parent (\d+) top level (\d+) parent_uuid (\S+)\s+received_uuid (\S+)\s+uuid (\S+) path (.*)$");
            foreach (string line in Shell.Run("btrfs", "subvolume", "list", "-puqcR", mnt).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Match m = row.Match(line.Trim());
                Assert.True(m.Success, "unexpected btrfs subvolume list line: " + line);
                rows[ulong.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] = new Dictionary<string, string>
                {
                    ["gen"] = m.Groups[2].Value,
                    ["cgen"] = m.Groups[3].Value,
                    ["parent"] = m.Groups[4].Value,
                    ["top"] = m.Groups[5].Value,
                    ["parent_uuid"] = m.Groups[6].Value,
                    ["received_uuid"] = m.Groups[7].Value,
                    ["uuid"] = m.Groups[8].Value,
                    ["path"] = m.Groups[9].Value,
                };
            }

            return rows;
        }

        /// <summary>`btrfs subvolume show PATH`: "Key: value" lines.</summary>
        private static Dictionary<string, string> ShownByProgs(string path)
        {
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string line in Shell.Run("btrfs", "subvolume", "show", path).Split('\n').Skip(1))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0)
                {
                    fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                }
            }

            return fields;
        }

        /// <summary>What a refusal must leave alone of a directory: inode, mode, owner, links, times.</summary>
        private static string DirectoryStat(string path) => Shell.Run("stat", "-c", "%i %a %u %g %h %Y %Z", path).Trim();

        private static string Uuid(Guid? g) => g is Guid u && u != Guid.Empty ? u.ToString() : "-";

        private static void SameAsProgs(BtrfsSubvolumeInfo s, Dictionary<string, string> listed, string mnt)
        {
            string what = $"subvolume {s.Id} ({s.Path})";
            Assert.True(listed["gen"] == s.Generation.ToString(CultureInfo.InvariantCulture), $"{what}: generation {s.Generation}, btrfs says {listed["gen"]}");
            Assert.True(listed["cgen"] == s.CreationGeneration.ToString(CultureInfo.InvariantCulture), $"{what}: creation generation {s.CreationGeneration}, btrfs says {listed["cgen"]}");
            Assert.True(listed["parent"] == s.ParentId.ToString(CultureInfo.InvariantCulture), $"{what}: parent {s.ParentId}, btrfs says {listed["parent"]}");
            Assert.Equal(listed["top"], s.TopLevelId.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(listed["uuid"], Uuid(s.Uuid));
            Assert.Equal(listed["parent_uuid"], Uuid(s.ParentUuid));
            Assert.Equal(listed["received_uuid"], Uuid(s.ReceivedUuid));
            Assert.Equal("/" + listed["path"], s.TopLevelPath);
            Assert.Equal(Path.Combine(mnt, listed["path"]), s.Path);
            Assert.Equal(Path.GetFileName(listed["path"]), s.Name);

            Dictionary<string, string> shown = ShownByProgs(s.Path!);
            Assert.Equal(shown["Subvolume ID"], s.Id.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(shown["Flags"] == "readonly", s.IsReadOnly);
            Assert.Equal(shown["Parent UUID"] != "-", s.IsSnapshot);
            DateTimeOffset created = DateTimeOffset.ParseExact(shown["Creation time"], "yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);
            Assert.NotNull(s.CreationTimeUtc);
            Assert.Equal(created.UtcDateTime, new DateTime(s.CreationTimeUtc!.Value.Ticks / TimeSpan.TicksPerSecond * TimeSpan.TicksPerSecond, DateTimeKind.Utc));
            Assert.Equal(DateTimeKind.Utc, s.CreationTimeUtc.Value.Kind);
            Assert.Equal((s.CreationTimeUtc.Value.ToLocalTime(), DateTimeKind.Local), (s.CreationTime!.Value, s.CreationTime.Value.Kind));
        }

        [SkippableFact]
        public void CreationTimeIsLocalSoAnAgeFilterAgainstGetDateHoldsInAnyTimeZone()
        {
            // Before: CreationTime was UTC, and PowerShell compares times by their clock readings: in Berlin a snapshot
            // made a second ago was older than (Get-Date).AddMinutes(-30), and a retention filter offered to
            // delete it (a hostile review). Now local time, as FileInfo's, with CreationTimeUtc beside it.
            Requires.That(RealPwsh.ToolDirectory is not null, "pwsh 7.6 is not installed (dotnet tool install --global PowerShell --version 7.6.9; .ci/run does it)");
            Requires.That(File.Exists("/usr/share/zoneinfo/Europe/Berlin") && File.Exists("/usr/share/zoneinfo/America/New_York"), "tzdata is not installed (.ci/run installs it)");
            string dir = fs.NewDirectory(TestFs.Btrfs, "tz");
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(dir, "vol"));
            foreach (string zone in new[] { "Europe/Berlin", "America/New_York" })
            {
                string snap = Path.Combine(dir, "snap-" + zone.Replace('/', '-'));
                RealPwsh.Result r = RealPwsh.RunWrapped(
                    "$s = New-BtrfsSnapshot -LiteralPath $v -Destination $d -ReadOnly; $now = Get-Date\n"
                    + "'@@' + ($s.CreationTime -lt $now.AddMinutes(-30)); '@@' + ([math]::Abs(($now - $s.CreationTime).TotalMinutes) -lt 5)\n"
                    + "'@@' + $s.CreationTime.Kind; '@@' + $s.CreationTimeUtc.Kind; '@@' + ($s.CreationTime.ToUniversalTime() -eq $s.CreationTimeUtc)\n"
                    + "'@@' + [int]([System.TimeZoneInfo]::Local.GetUtcOffset($now).TotalHours -ne 0)\n"
                    + "$old = Get-BtrfsSubvolume -LiteralPath $dir -Recurse | Where-Object { $_.IsSnapshot -and $_.CreationTime -lt (Get-Date).AddMinutes(-30) }; '@@' + @($old).Count",
                    new[] { "env", "TZ=" + zone },
                    ("v", Path.Combine(dir, "vol")),
                    ("d", snap),
                    ("dir", dir));
                Assert.True(r.Marked.Length == 7, zone + ": " + r.StdOut + r.StdErr);
                Assert.Equal(new[] { "False", "True", "Local", "Utc", "True", "1", "0" }, r.Marked);
            }
        }

        [SkippableFact]
        public void EverySubvolumeMatchesBtrfsSubvolumeListAndShowFieldByField()
        {
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string mnt = own.MountPoint;
            Layout(mnt);
            Dictionary<ulong, Dictionary<string, string>> listed = ListedByProgs(mnt);
            Assert.Equal(7, listed.Count);

            // -All: every subvolume, by id, as btrfs lists them.
            PwshResult all = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All", ("m", mnt));
            Assert.Empty(all.Errors);
            List<BtrfsSubvolumeInfo> subvolumes = all.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(listed.Keys.OrderBy(x => x), subvolumes.Select(s => s.Id));
            foreach (BtrfsSubvolumeInfo s in subvolumes)
            {
                SameAsProgs(s, listed[s.Id], mnt);
                Assert.False(s.IsDefault);
                Assert.Null(s.MountPoint);
            }

            // A snapshot names its source: the subvolume, or the snapshot it was taken of.
            BtrfsSubvolumeInfo Of(string rel) => subvolumes.Single(s => s.Path == Path.Combine(mnt, rel));
            Assert.Equal(Path.Combine(mnt, "sv"), Of("snaps/ro-1").SourcePath);
            Assert.Equal(Path.Combine(mnt, "snap"), Of("snap-of-snap").SourcePath);
            Assert.Null(Of("sv").SourcePath);
            Assert.True(Of("snaps/ro-2").IsReadOnly && Of("snaps/ro-2").IsSnapshot);
            Assert.True(Of("sv/inner").ParentId == Of("sv").Id);

            // The subvolume of a path: of a file inside it, of its root, and the top level.
            PwshResult self = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $f, $d, $m", ("f", Path.Combine(mnt, "sv", "vm.img")), ("d", Path.Combine(mnt, "d")), ("m", mnt));
            Assert.Empty(self.Errors);
            List<BtrfsSubvolumeInfo> selves = self.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(new ulong[] { Of("sv").Id, 5, 5 }, selves.Select(s => s.Id));
            SameAsProgs(selves[0], listed[selves[0].Id], mnt);
            BtrfsSubvolumeInfo top = selves[2];
            Assert.Equal("<FS_TREE>", top.Name);
            Assert.Equal("/", top.TopLevelPath);
            Assert.Equal(mnt, top.Path);
            Assert.Equal(0UL, top.ParentId);
            Assert.True(top.IsDefault);
            Assert.Equal(mnt, top.MountPoint);

            // -Recurse below a directory: its subvolume first, then those below it, each after its parent; nothing beside it.
            PwshResult below = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $d -Recurse", ("d", Path.Combine(mnt, "sv")));
            Assert.Empty(below.Errors);
            Assert.Equal(new[] { Path.Combine(mnt, "sv"), Path.Combine(mnt, "sv", "inner") }, below.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));

            // Through a symbolic link to a subvolume, every path names it the same way (the kernel's path of the
            // directory opened). Before: the subvolume itself resolved, those below through the link. Found by a
            // hostile review.
            File.CreateSymbolicLink(Path.Combine(mnt, "link-sv"), Path.Combine(mnt, "sv"));
            try
            {
                PwshResult linked = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $d -Recurse", ("d", Path.Combine(mnt, "link-sv")));
                Assert.Empty(linked.Errors);
                Assert.Equal(new[] { Path.Combine(mnt, "sv"), Path.Combine(mnt, "sv", "inner") }, linked.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));
            }
            finally
            {
                File.Delete(Path.Combine(mnt, "link-sv"));
            }

            PwshResult whole = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -Recurse", ("m", mnt));
            Assert.Empty(whole.Errors);
            List<BtrfsSubvolumeInfo> tree = whole.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(8, tree.Count); // the top level and the seven
            Assert.True(tree.FindIndex(s => s.Path == Path.Combine(mnt, "sv")) < tree.FindIndex(s => s.Path == Path.Combine(mnt, "sv", "inner")));
            foreach (BtrfsSubvolumeInfo s in tree.Skip(1))
            {
                SameAsProgs(s, listed[s.Id], mnt);
            }
        }

        [SkippableFact]
        public void WithoutPrivilegeTheSubvolumesBelowASearchableDirectoryAreListedAndAllIsRefused()
        {
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string mnt = own.MountPoint;
            Layout(mnt);
            // Mode 711: nobody may search d but not read it, and the kernel's lookup for users (INO_LOOKUP_USER)
            // needs both: d/deep stays unlisted, though its path still reaches it. Before: the warning said a
            // directory on the way was "not searchable". Found by a hostile review.
            Shell.Run("chmod", "0711", Path.Combine(mnt, "d"));
            Dictionary<ulong, Dictionary<string, string>> listed = ListedByProgs(mnt);

            PwshResult r, all, direct;
            using (Unprivileged.Begin())
            {
                r = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -Recurse", ("m", mnt));
                all = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All", ("m", mnt));
                direct = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $d", ("d", Path.Combine(mnt, "d", "deep")));
            }

            Assert.Empty(r.Errors);
            Assert.Contains(r.Warnings, w => w.Message.Contains("not both readable and searchable by this user", StringComparison.Ordinal));
            Assert.Empty(direct.Errors);
            Assert.Equal(Path.Combine(mnt, "d", "deep"), Assert.Single(direct.Objects<BtrfsSubvolumeInfo>()).Path);
            List<BtrfsSubvolumeInfo> seen = r.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(
                new[] { "", "sv", "sv/inner", "snap", "snaps/ro-1", "snaps/ro-2", "snap-of-snap" }.Select(p => Path.Combine(mnt, p).TrimEnd('/')).OrderBy(p => p, StringComparer.Ordinal),
                seen.Select(s => s.Path!).OrderBy(p => p, StringComparer.Ordinal));
            foreach (BtrfsSubvolumeInfo s in seen.Where(s => s.Id != 5))
            {
                SameAsProgs(s, listed[s.Id], mnt); // the path from the top level comes from the mount
                Assert.Null(s.IsDefault); // only root can read it
            }

            Assert.Empty(all.Output);
            ErrorRecord e = Assert.Single(all.Errors);
            Assert.Equal("AccessDenied", e.FullyQualifiedErrorId.Split(',')[0]);
            Assert.Contains("needs root", e.Exception.Message, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void IdCompletesToTheSubvolumesOfTheFileSystemWithTheirPaths()
        {
            // Before: -Id of Measure-BtrfsSubvolume and Remove-BtrfsSubvolume completed nothing. Found by a newcomer review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string mnt = own.MountPoint;
            Layout(mnt);
            Dictionary<ulong, Dictionary<string, string>> listed = ListedByProgs(mnt);
            const string Complete = "$s = $line; (TabExpansion2 -inputScript $s -cursorColumn $s.Length).CompletionMatches | ForEach-Object { $_.CompletionText + '|' + $_.ToolTip }";
            PwshResult all = Pwsh.Run(Complete, ("line", $"Measure-BtrfsSubvolume -FileSystemPath '{mnt}' -Id "));
            Assert.Empty(all.Errors);
            var rows = all.Output.Select(o => o.ToString()!.Split('|', 2)).ToList();
            Assert.Equal(listed.Keys.OrderBy(k => k).Select(k => k.ToString(CultureInfo.InvariantCulture)), rows.Select(r => r[0]));
            foreach (string[] row in rows)
            {
                Assert.EndsWith(": " + Path.Combine(mnt, listed[ulong.Parse(row[0], CultureInfo.InvariantCulture)]["path"]), row[1], StringComparison.Ordinal);
            }

            Assert.StartsWith("read-only snapshot ", rows.Single(r => r[1].EndsWith("/snaps/ro-1", StringComparison.Ordinal))[1], StringComparison.Ordinal);

            // What is typed narrows it; a relative -FileSystemPath, or none, is taken from the current location.
            string first = rows[0][0];
            PwshResult narrowed = Pwsh.Run("Set-Location -LiteralPath $m; " + Complete, ("m", Path.Combine(mnt, "sv")), ("line", $"Remove-BtrfsSubvolume -Id {first[..^1]}"));
            Assert.Equal(rows.Where(r => r[0].StartsWith(first[..^1], StringComparison.Ordinal)).Select(r => r[0]), narrowed.Output.Select(o => o.ToString()!.Split('|')[0]));
            PwshResult relative = Pwsh.Run("Set-Location -LiteralPath $m; " + Complete, ("m", mnt), ("line", "Measure-BtrfsSubvolume -FileSystemPath sv -Id "));
            Assert.Equal(rows.Count, relative.Output.Count);

            // Not btrfs, or not root: nothing where nothing can be listed, what this user can list otherwise, and never an error.
            PwshResult elsewhere = Pwsh.Run(Complete, ("line", "Measure-BtrfsSubvolume -FileSystemPath /proc -Id "));
            Assert.Empty(elsewhere.Errors);
            Assert.Empty(elsewhere.Output);
            PwshResult unprivileged;
            using (Unprivileged.Begin())
            {
                unprivileged = Pwsh.Run(Complete, ("line", $"Measure-BtrfsSubvolume -FileSystemPath '{mnt}' -Id "));
            }

            Assert.Empty(unprivileged.Errors);
            Assert.Contains(unprivileged.Output, o => o.ToString()!.EndsWith(": " + Path.Combine(mnt, "snaps", "ro-2"), StringComparison.Ordinal));

            // The top level (id 5) is never offered, and an expression PowerShell does not evaluate for completion
            // completes nothing rather than the current location's ids (both found by a hostile review).
            Assert.DoesNotContain(unprivileged.Output.Concat(all.Output), o => o.ToString()!.StartsWith("5|", StringComparison.Ordinal));
            PwshResult expression = Pwsh.Run("Set-Location -LiteralPath $m; " + Complete, ("m", mnt), ("line", "Measure-BtrfsSubvolume -FileSystemPath (Get-Item /proc) -Id "));
            Assert.Empty(expression.Errors);
            Assert.Empty(expression.Output);
        }

        [SkippableFact]
        public void TheHelpsOldestSnapshotExamplePicksASnapshotBelowNeverTheSnapshotHoldingThem()
        {
            // Before: Remove-BtrfsSubvolume's example 2 took the oldest IsSnapshot of Get-BtrfsSubvolume -Recurse, and
            // -Recurse lists the subvolume holding the directory first: a holder that is itself a snapshot (as after a
            // rollback) was picked. Found by a hostile review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(own.MountPoint, x);
            Shell.Run("btrfs", "subvolume", "create", P("src"));
            Shell.Run("btrfs", "subvolume", "snapshot", P("src"), P("data")); // the oldest snapshot of all
            Directory.CreateDirectory(P("data/snapshots"));
            Shell.Run("btrfs", "subvolume", "create", P("data/vol"));
            foreach (string n in new[] { "s1", "s2", "s3" })
            {
                Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("data/vol"), P("data/snapshots/" + n));
            }

            string example = Pwsh.Run("@((Get-Help Remove-BtrfsSubvolume -Full).Examples.Example)[1].Code").Output[0].ToString()!;
            Assert.Contains("/srv/snapshots", example, StringComparison.Ordinal);
            PwshResult r = Pwsh.Run(example.Replace("/srv/snapshots", P("data/snapshots"), StringComparison.Ordinal).Replace("-PassThru", "-PassThru -Confirm:$false", StringComparison.Ordinal));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { P("data/snapshots/s1") }, r.Objects<BtrfsSubvolumeInfo>().Select(x => x.Path));
            Assert.True(Directory.Exists(P("data/vol")));
        }

        [SkippableFact]
        public void RecurseBelowAPlainDirectoryNeverListsTheSubvolumeHoldingIt()
        {
            // Before: -Recurse on a plain directory listed the subvolume holding it first; inside a snapshot (the root
            // after a rollback) about_Btrfs's "| Where-Object IsSnapshot | Measure-BtrfsSubvolume -Together" counted the
            // live subvolume, and the same pipeline into Remove-BtrfsSubvolume deleted it with its data. Found by a
            // hostile review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(own.MountPoint, x);
            Shell.Run("btrfs", "subvolume", "create", P("sv1"));
            Shell.Run("btrfs", "subvolume", "snapshot", P("sv1"), P("rootfs"));
            FileBuilder.WriteNew(P("rootfs/important"), FileBuilder.RandomBytes(1 << 20, 71));
            string hash = FileFacts.Hash(P("rootfs/important"));
            Directory.CreateDirectory(P("rootfs/snapshots"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("rootfs"), P("rootfs/snapshots/s1"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("rootfs"), P("rootfs/snapshots/s2"));
            string[] snapshots = { P("rootfs/snapshots/s1"), P("rootfs/snapshots/s2") };

            PwshResult listed = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $d -Recurse", ("d", P("rootfs/snapshots")));
            Assert.Empty(listed.Errors);
            Assert.Equal(snapshots, listed.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));

            // A subvolume's root directory is at the path: listed first. A file has nothing below it.
            PwshResult atRoot = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $d -Recurse; Get-BtrfsSubvolume -LiteralPath $f -Recurse", ("d", P("rootfs")), ("f", P("rootfs/important")));
            Assert.Empty(atRoot.Errors);
            Assert.Equal(new[] { P("rootfs") }.Concat(snapshots), atRoot.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));

            // about_Btrfs's lines, word for word but for the directory (a line ending in a pipe goes on in the next).
            string[] all = File.ReadAllLines(Path.Combine(RepoPaths.Root, "en-US", "about_Btrfs.help.txt")).Select(l => l.Trim()).ToArray();
            var joined = new List<string>();
            for (int i = 0; i < all.Length; i++)
            {
                string line = all[i];
                while (line.EndsWith('|') && i + 1 < all.Length)
                {
                    line += " " + all[++i];
                }

                joined.Add(line);
            }

            string[] lines = joined.Where(l => l.StartsWith("PS> Get-BtrfsSubvolume ./snapshots -Recurse", StringComparison.Ordinal)).Select(l => l[4..]).ToArray();
            string together = Assert.Single(lines, l => l.EndsWith("Measure-BtrfsSubvolume -Together", StringComparison.Ordinal));
            PwshResult measured = Pwsh.Run("Set-Location -LiteralPath $r; " + together, ("r", P("rootfs")));
            Assert.Empty(measured.Errors);
            ulong[] ids = snapshots.Select(s => ulong.Parse(Shell.Run("btrfs", "inspect-internal", "rootid", s).Trim(), CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(ids, Assert.Single(measured.Objects<BtrfsSubvolumeUsage>()).Ids);

            // The set's ids bind to -Id as a list, each measured again (a comma-joined text was read as one number).
            PwshResult again = Pwsh.Run("Set-Location -LiteralPath $r; $set = " + together + "; Measure-BtrfsSubvolume -Id $set.Ids -FileSystemPath .", ("r", P("rootfs")));
            Assert.Empty(again.Errors);
            Assert.Equal(ids, again.Objects<BtrfsSubvolumeUsage>().Select(u => u.Id));

            PwshResult removed = Pwsh.Run("Set-Location -LiteralPath $r; Get-BtrfsSubvolume ./snapshots -Recurse | Where-Object IsSnapshot | Remove-BtrfsSubvolume -Confirm:$false -PassThru", ("r", P("rootfs")));
            Assert.Empty(removed.Errors);
            Assert.Equal(snapshots, removed.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path!).OrderBy(p => p, StringComparer.Ordinal));
            Assert.Equal(hash, FileFacts.Hash(P("rootfs/important")));
            Assert.Contains("rootfs", Shell.Run("btrfs", "subvolume", "list", own.MountPoint), StringComparison.Ordinal);
        }

        [SkippableFact]
        public void WithRecurseASubvolumeIsWrittenOncePerPipelineWithoutItEachPathGetsItsAnswer()
        {
            // Before: -Recurse walks of overlapping trees wrote the subvolumes below both twice. Found by a hostile test.
            // Without -Recurse each path (each piped extent) gets its answer, as Test-Path gives one.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(own.MountPoint, x);
            Shell.Run("btrfs", "subvolume", "create", P("sv"));
            string file = P("sv/vm.img");
            FileBuilder.Chunks(file, 8, 4096, 8192);
            Directory.CreateDirectory(P("sv/snapshots"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("sv"), P("sv/snapshots/s1"));
            Shell.Run("btrfs", "subvolume", "snapshot", "-r", P("sv"), P("sv/snapshots/s2"));
            Assert.True(Filefrag.Extents(file).Count > 1);

            PwshResult piped = Pwsh.Run("Get-BtrfsExtent -LiteralPath $f | Get-BtrfsSubvolume", ("f", file));
            Assert.Empty(piped.Errors);
            Assert.Equal(Enumerable.Repeat(P("sv"), Filefrag.Extents(file).Count), piped.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));

            PwshResult overlapping = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $a, $b -Recurse", ("a", P("sv")), ("b", P("sv/snapshots")));
            Assert.Empty(overlapping.Errors);
            string[] listed = Shell.Run("btrfs", "subvolume", "list", "-o", P("sv")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => P(l[(l.IndexOf(" path ", StringComparison.Ordinal) + 6)..].Trim())).ToArray();
            Assert.Equal(new[] { P("sv") }.Concat(listed).Order(StringComparer.Ordinal), overlapping.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path!).Order(StringComparer.Ordinal));

            // Each pipeline answers on its own.
            PwshResult twice = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $f; Get-BtrfsSubvolume -LiteralPath $f", ("f", file));
            Assert.Equal(2, twice.Objects<BtrfsSubvolumeInfo>().Count());
        }

        [SkippableFact]
        public void ADestinationScriptBlockRunsPerPipedSubvolumeAndIsRefusedWhereItWouldBeTakenAsText()
        {
            // Before: -Destination { ... } was bound as the block's text: New-BtrfsSnapshot made a subvolume named
            // " $_.Name + '-snap' ", New-BtrfsReflink a file of that name. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "snap-per-object");
            string P(string x) => Path.Combine(dir, x);
            Shell.Run("btrfs", "subvolume", "create", P("a"));
            Shell.Run("btrfs", "subvolume", "create", P("b"));
            Directory.CreateDirectory(P("snaps"));
            FileBuilder.WriteNew(P("f.img"), FileBuilder.RandomBytes(64 << 10, 73));
            FileBuilder.WriteNew(P("g.img"), FileBuilder.RandomBytes(64 << 10, 73));
            PwshResult snapped = Pwsh.Run(
                "Set-Location -LiteralPath $d; Get-BtrfsSubvolume -LiteralPath $a, $b | New-BtrfsSnapshot -Destination { Join-Path $d \"snaps/$($_.Name)-snap\" } -ReadOnly",
                ("d", dir), ("a", P("a")), ("b", P("b")));
            Assert.Empty(snapped.Errors);
            Assert.Equal(new[] { P("snaps/a-snap"), P("snaps/b-snap") }, snapped.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));
            Assert.Equal(ShownByProgs(P("b"))["UUID"], ShownByProgs(P("snaps/b-snap"))["Parent UUID"]);

            // Where the block would not run per object: refused before anything is made.
            string[] before = FileFacts.Listing(dir);
            PwshResult refused = Pwsh.Run(
                "Set-Location -LiteralPath $d; Get-Item -LiteralPath $f | New-BtrfsReflink -Destination { $_.FullName + '.bak' }; Invoke-BtrfsDedupe -LiteralPath $f -Destination { $_ }, $g -WhatIf:$false -Confirm:$false",
                ("d", dir), ("f", P("f.img")), ("g", P("g.img")));
            Assert.Equal(2, refused.Errors.Count);
            Assert.All(refused.Errors, e => Assert.Contains("script block is not run here", e.Exception.Message, StringComparison.Ordinal));
            Assert.Equal(before, FileFacts.Listing(dir));
        }

        [SkippableFact]
        public void TheEmptyDirectoryASnapshotShowsForANestedSubvolumeIsNamedForWhatItIs()
        {
            // Before: every cmdlet given it reported ENOTTY ("Inappropriate ioctl for device"), and New-BtrfsSnapshot
            // advised running Get-BtrfsSubvolume on it, which failed the same way. Found by a hostile review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(own.MountPoint, x);
            Shell.Run("btrfs", "subvolume", "create", P("sv"));
            Shell.Run("btrfs", "subvolume", "create", P("sv/nested"));
            Shell.Run("btrfs", "subvolume", "snapshot", P("sv"), P("copy"));
            Assert.Equal("2", Shell.Run("stat", "-c", "%i", P("copy/nested")).Trim()); // btrfs's stand-in

            PwshResult r = Pwsh.Run(
                "Get-BtrfsSubvolume -LiteralPath $p; New-BtrfsSnapshot -LiteralPath $p -Destination $a; New-BtrfsSubvolume -Path $in; " +
                "New-BtrfsSnapshot -LiteralPath $sv -Destination $in; Measure-BtrfsSubvolume -LiteralPath $p; Remove-BtrfsSubvolume -LiteralPath $p -Confirm:$false",
                ("p", P("copy/nested")), ("a", P("a")), ("in", P("copy/nested/new")), ("sv", P("sv")));
            Assert.Equal(Enumerable.Repeat("SubvolumePlaceholder", 6), r.ErrorIds);
            Assert.All(r.Errors, e => Assert.Contains("where the snapshot's source had a nested subvolume", e.Exception.Message, StringComparison.Ordinal));
            Assert.Empty(r.Output);
            Assert.False(Directory.Exists(P("a")));
            Assert.Equal(3, Shell.Run("btrfs", "subvolume", "list", own.MountPoint).Trim().Split('\n').Length);

            // The advice holds: it can be removed.
            Assert.Empty(Pwsh.Run("Remove-Item -LiteralPath $p", ("p", P("copy/nested"))).Errors);
            Assert.False(Directory.Exists(P("copy/nested")));
        }

        [SkippableFact]
        public void ASubvolumeReadBackFromCsvOrJsonIsSnapshottedAndStillCheckedByItsUuid()
        {
            // Before: InputObjectMissingMandatory (only PSPath bound, and CSV/JSON objects have none), though the help
            // said the Uuid of such objects is bound. Found by a hostile review.
            string dir = fs.NewDirectory(TestFs.Btrfs, "snap-from-csv");
            string P(string x) => Path.Combine(dir, x);
            Shell.Run("btrfs", "subvolume", "create", P("sv"));
            Shell.Run("btrfs", "subvolume", "create", P("other"));
            PwshResult r = Pwsh.Run(
                "$o = Get-BtrfsSubvolume -LiteralPath $sv; $o | ConvertTo-Csv | ConvertFrom-Csv | New-BtrfsSnapshot -Destination $c; $o | ConvertTo-Json | ConvertFrom-Json | New-BtrfsSnapshot -Destination $j",
                ("sv", P("sv")), ("c", P("from-csv")), ("j", P("from-json")));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { P("from-csv"), P("from-json") }, r.Objects<BtrfsSubvolumeInfo>().Select(s => s.Path));
            Assert.Equal(ShownByProgs(P("sv"))["UUID"], ShownByProgs(P("from-csv"))["Parent UUID"]);

            // A name with wildcard characters, next to the name its pattern would match, is used literally.
            Shell.Run("btrfs", "subvolume", "create", P("s[1]"));
            Shell.Run("btrfs", "subvolume", "create", P("s1"));
            PwshResult bracket = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $s | ConvertTo-Csv | ConvertFrom-Csv | New-BtrfsSnapshot -Destination $d", ("s", P("s[1]")), ("d", P("from-bracket")));
            Assert.Empty(bracket.Errors);
            Assert.Equal(ShownByProgs(P("s[1]"))["UUID"], ShownByProgs(P("from-bracket"))["Parent UUID"]);

            // A piped string is the path, taken as typed (the help says strings are taken; before: InputObjectNotBound).
            PwshResult piped = Pwsh.Run("$s | New-BtrfsSnapshot -Destination $d", ("s", P("s[1]")), ("d", P("from-string")));
            Assert.Empty(piped.Errors);
            Assert.Equal(ShownByProgs(P("s[1]"))["UUID"], ShownByProgs(P("from-string"))["Parent UUID"]);

            // The Uuid still guards: the name now leads to another subvolume, so nothing is made.
            PwshResult replaced = Pwsh.Run(
                "$csv = Get-BtrfsSubvolume -LiteralPath $sv | ConvertTo-Csv; Rename-Item -LiteralPath $sv -NewName sv.old; Rename-Item -LiteralPath $other -NewName sv; $csv | ConvertFrom-Csv | New-BtrfsSnapshot -Destination $n",
                ("sv", P("sv")), ("other", P("other")), ("n", P("never")));
            Assert.Equal("SubvolumeReplaced", Assert.Single(replaced.ErrorIds));
            Assert.False(Directory.Exists(P("never")));
        }

        [SkippableFact]
        public void TheNilUuidGivenIsLookedForNotTakenAsNone()
        {
            // Before: -Uuid 00000000-0000-0000-0000-000000000000 (a default [guid], a conversion that failed quietly in a
            // script) was taken as "no UUID given": snapshots were made and deletions planned of whatever the path led to
            // (a hostile review). It names only a subvolume without a UUID (made by a kernel before UUIDs; mkfs.btrfs 6
            // gives the top level one too).
            string dir = fs.NewDirectory(TestFs.Btrfs, "nil-uuid");
            string P(string x) => Path.Combine(dir, x);
            Shell.Run("btrfs", "subvolume", "create", P("sv"));
            string nil = Guid.Empty.ToString();
            PwshResult r = Pwsh.Run(
                """
                New-BtrfsSnapshot -LiteralPath $sv -Destination $n -Uuid ([guid]::Empty)
                [pscustomobject]@{ Path = $sv; Uuid = $nil } | New-BtrfsSnapshot -Destination $n
                Remove-BtrfsSubvolume -LiteralPath $sv -Uuid $nil -WhatIf
                Remove-BtrfsSubvolume -LiteralPath $sv -Uuid $nil -Confirm:$false
                Measure-BtrfsSubvolume -LiteralPath $sv -Uuid ([guid]::Empty)
                """,
                ("sv", P("sv")), ("n", P("never")), ("nil", nil));
            Assert.Equal(Enumerable.Repeat("SubvolumeReplaced", 5), r.ErrorIds);
            Assert.All(r.Errors, e => Assert.Contains($"not the subvolume {nil}", e.Exception.Message, StringComparison.Ordinal));
            Assert.Empty(r.Output);
            Assert.False(Directory.Exists(P("never")));
            Assert.True(Directory.Exists(P("sv")));
            Assert.NotEqual("-", ShownByProgs(P("sv"))["UUID"]);

            // A hashtable (ConvertFrom-Json -AsHashtable) is checked by its Uuid as an object is (a review: its Path key
            // was taken, its Uuid not, and the deletion went to whatever the path led to).
            PwshResult hashed = Pwsh.Run(
                "@{ Path = $sv; Uuid = $nil } | Remove-BtrfsSubvolume -Confirm:$false; Get-BtrfsSubvolume -LiteralPath $sv | ConvertTo-Json | ConvertFrom-Json -AsHashtable | Remove-BtrfsSubvolume -WhatIf",
                ("sv", P("sv")), ("nil", nil));
            Assert.Equal(new[] { "SubvolumeReplaced" }, hashed.ErrorIds);
            Assert.True(Directory.Exists(P("sv")));
        }

        [SkippableFact]
        public void TheDefaultSubvolumeAndAMountOfASubvolumeAreShown()
        {
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string mnt = own.MountPoint;
            Layout(mnt);
            string id = Shell.Run("btrfs", "inspect-internal", "rootid", Path.Combine(mnt, "snap")).Trim();
            Shell.Run("btrfs", "subvolume", "set-default", id, mnt);
            string second = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "subvol-mount"), "m");
            string third = second + "2";
            Directory.CreateDirectory(second);
            Directory.CreateDirectory(third);
            Shell.Run("mount", "-o", "subvol=/sv", Shell.Run("findmnt", "-no", "SOURCE", mnt).Trim(), second);
            Shell.Run("mount", "-o", "subvol=/sv", Shell.Run("findmnt", "-no", "SOURCE", mnt).Trim(), third);
            try
            {
                PwshResult r = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All; Get-BtrfsSubvolume -LiteralPath $s", ("m", mnt), ("s", second));
                Assert.Empty(r.Errors);
                List<BtrfsSubvolumeInfo> subvolumes = r.Objects<BtrfsSubvolumeInfo>();
                Assert.Equal(new[] { Path.Combine(mnt, "snap") }, subvolumes.Take(7).Where(s => s.IsDefault == true).Select(s => s.Path));
                BtrfsSubvolumeInfo mounted = subvolumes[7];
                Assert.Equal("/sv", mounted.TopLevelPath);
                Assert.Equal(second, mounted.Path);
                Assert.Equal(second, mounted.MountPoint);
                Assert.Equal(second, subvolumes.Single(s => s.TopLevelPath == "/sv" && s != mounted).MountPoint);

                // Every mount that shows it, in mount order (the first is MountPoint).
                Assert.Equal(new[] { second, third }, mounted.MountPoints);
            }
            finally
            {
                Shell.Run("umount", third);
                Shell.Run("umount", second);
            }
        }

        [SkippableFact]
        public void NewSubvolumeIsCreatedNoCowFromTheStartAndRefusesATakenName()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "subvol-new");
            string images = Path.Combine(dir, "images"), plain = Path.Combine(dir, "plain");
            PwshResult r = Pwsh.Run("New-BtrfsSubvolume -Path $a -NoCow; $b | New-BtrfsSubvolume", ("a", images), ("b", plain));
            Assert.Empty(r.Errors);
            List<BtrfsSubvolumeInfo> made = r.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(new[] { images, plain }, made.Select(s => s.Path));
            Assert.Equal(Shell.Run("btrfs", "inspect-internal", "rootid", images).Trim(), made[0].Id.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(made[0].Uuid.ToString(), ShownByProgs(images)["UUID"]);
            Assert.False(made[0].IsSnapshot);
            Assert.Contains('C', Shell.Run("lsattr", "-d", images).Split(' ')[0]);
            Assert.DoesNotContain('C', Shell.Run("lsattr", "-d", plain).Split(' ')[0]);
            FileBuilder.WriteNew(Path.Combine(images, "vm.img"), FileBuilder.RandomBytes(64 << 10, 3));
            Assert.True(Pwsh.Run("Test-NoCow -LiteralPath $f", ("f", Path.Combine(images, "vm.img"))).Objects<bool>().Single());

            // A taken name: refused, the directory there untouched; -WhatIf creates nothing.
            string taken = Path.Combine(dir, "taken");
            Directory.CreateDirectory(taken);
            string before = DirectoryStat(taken);
            PwshResult again = Pwsh.Run("New-BtrfsSubvolume $t; New-BtrfsSubvolume $w -WhatIf", ("t", taken), ("w", Path.Combine(dir, "whatif")));
            Assert.Equal("DestinationExists", Assert.Single(again.ErrorIds));
            Assert.Equal(taken, again.Errors[0].TargetObject);
            Assert.Equal(before, DirectoryStat(taken));
            Assert.False(Directory.Exists(Path.Combine(dir, "whatif")));

            // Off btrfs, and without write permission on the parent.
            string xfs = fs.NewDirectory(TestFs.Xfs, "subvol-new");
            PwshResult off = Pwsh.Run("New-BtrfsSubvolume $x", ("x", Path.Combine(xfs, "s")));
            Assert.Equal("OperationNotSupported", Assert.Single(off.ErrorIds));
            Shell.Run("chmod", "0755", dir);
            PwshResult denied;
            using (Unprivileged.Begin())
            {
                denied = Pwsh.Run("New-BtrfsSubvolume $d", ("d", Path.Combine(dir, "nobodys")));
            }

            Assert.Equal("AccessDenied", Assert.Single(denied.ErrorIds));
            Assert.False(Directory.Exists(Path.Combine(dir, "nobodys")));
        }

        [SkippableFact]
        public void ASnapshotOfTheTopLevelNamesItsSource()
        {
            // The top level's root item is not among the subvolumes listed, yet its snapshots name its UUID. Before:
            // their SourcePath was empty, from New-BtrfsSnapshot and Get-BtrfsSubvolume alike. Found by a hostile review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            string mnt = own.MountPoint;
            string snap = Path.Combine(mnt, "top-snap");
            PwshResult r = Pwsh.Run("New-BtrfsSnapshot -LiteralPath $m -Destination $d -ReadOnly; Get-BtrfsSubvolume -LiteralPath $d; Get-BtrfsSubvolume -LiteralPath $m -All", ("m", mnt), ("d", snap));
            Assert.Empty(r.Errors);
            List<BtrfsSubvolumeInfo> seen = r.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(3, seen.Count);
            Assert.Equal(ShownByProgs(mnt)["UUID"], ShownByProgs(snap)["Parent UUID"]);
            Assert.All(seen, s => Assert.Equal(mnt, s.SourcePath));
        }

        [SkippableFact]
        public void NewSnapshotIsReadOnlyWithItsSourceNamedAndRefusesWhatItCannotDo()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "subvol-snap");
            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            FileBuilder.WriteNew(Path.Combine(sv, "vm.img"), FileBuilder.RandomBytes(512 << 10, 4));
            Directory.CreateDirectory(Path.Combine(dir, "snaps"));
            string ro = Path.Combine(dir, "snaps", "ro"), rw = Path.Combine(dir, "snaps", "rw");

            PwshResult r = Pwsh.Run("New-BtrfsSnapshot $s $d -ReadOnly; Get-BtrfsSubvolume -LiteralPath $s | New-BtrfsSnapshot -Destination $w", ("s", sv), ("d", ro), ("w", rw));
            Assert.Empty(r.Errors);
            List<BtrfsSubvolumeInfo> snaps = r.Objects<BtrfsSubvolumeInfo>();
            Assert.Equal(new[] { ro, rw }, snaps.Select(s => s.Path));
            Dictionary<string, string> shown = ShownByProgs(ro);
            Assert.Equal("readonly", shown["Flags"]);
            Assert.Equal(ShownByProgs(sv)["UUID"], shown["Parent UUID"]);
            Assert.True(snaps[0].IsReadOnly && snaps[0].IsSnapshot);
            Assert.Equal(sv, snaps[0].SourcePath);
            Assert.False(snaps[1].IsReadOnly);
            Assert.Equal(FileFacts.Hash(Path.Combine(sv, "vm.img")), FileFacts.Hash(Path.Combine(ro, "vm.img")));

            // Hostile names: a piped object reaches exactly the subvolume it names ("a\..\sv" is one name, not
            // a way up to sv; brackets, a star and a newline are not patterns), and a new one is made as typed.
            string odd = Path.Combine(dir, "a\\..\\sv"), strange = Path.Combine(dir, "v[1]*\nx");
            Shell.Run("btrfs", "subvolume", "create", odd);
            PwshResult named = Pwsh.Run(
                "New-BtrfsSubvolume -Path $s | Out-Null; Get-BtrfsSubvolume -LiteralPath $d -Recurse | Where-Object { $_.Name -eq $n } | New-BtrfsSnapshot -Destination $to",
                ("s", strange), ("d", dir), ("n", "a\\..\\sv"), ("to", Path.Combine(dir, "odd-snap")));
            Assert.Empty(named.Errors);
            Assert.True(Directory.Exists(strange));
            Assert.Equal(ShownByProgs(odd)["UUID"], ShownByProgs(Path.Combine(dir, "odd-snap"))["Parent UUID"]);

            PwshResult provider = Pwsh.Run("New-BtrfsSubvolume -Path Env:/x; New-BtrfsSnapshot -Path Env:/x -Destination $to", ("to", Path.Combine(dir, "never")));
            Assert.Equal(new[] { "NotFileSystemPath", "NotFileSystemPath" }, provider.ErrorIds);
            Assert.False(Directory.Exists(Path.Combine(dir, "never")));

            // Not a subvolume, a taken destination, another btrfs filesystem, off btrfs: one error each, nothing made.
            using ExtraFileSystem other = fs.NewFileSystem("btrfs", "256M");
            string xfs = fs.NewDirectory(TestFs.Xfs, "subvol-snap");
            string rwBefore = DirectoryStat(rw);
            PwshResult bad = Pwsh.Run(
                "New-BtrfsSnapshot $plain $a; New-BtrfsSnapshot $s $taken; New-BtrfsSnapshot $s $elsewhere; New-BtrfsSnapshot $s $onXfs",
                ("plain", Path.Combine(dir, "snaps")),
                ("a", Path.Combine(dir, "a")),
                ("s", sv),
                ("taken", rw),
                ("elsewhere", Path.Combine(other.MountPoint, "copy")),
                ("onXfs", Path.Combine(xfs, "copy")));
            Assert.Equal(new[] { "NotASubvolume", "DestinationExists", "SnapshotAcrossFileSystems", "OperationNotSupported" }, bad.ErrorIds);
            Assert.Empty(bad.Output);
            Assert.False(Directory.Exists(Path.Combine(dir, "a")) || Directory.Exists(Path.Combine(other.MountPoint, "copy")) || Directory.Exists(Path.Combine(xfs, "copy")));
            Assert.Equal(rwBefore, DirectoryStat(rw));
        }

        [SkippableFact]
        public void RemoveDeletesWhatItIsGivenAndRefusesWhatIsInUse()
        {
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "512M");
            string mnt = own.MountPoint;
            Layout(mnt);
            string Rel(string p) => Path.Combine(mnt, p);
            HashSet<string> Listed() => ListedByProgs(mnt).Values.Select(v => v["path"]).ToHashSet(StringComparer.Ordinal);

            // -WhatIf deletes nothing; a plain directory and the top level are not subvolumes.
            PwshResult preview = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a -WhatIf; Remove-BtrfsSubvolume -LiteralPath $d, $m -Confirm:$false", ("a", Rel("snaps/ro-1")), ("d", Rel("d")), ("m", mnt));
            Assert.Equal(new[] { "NotASubvolume", "NotASubvolume" }, preview.ErrorIds);
            Assert.Equal(7, Listed().Count);

            // Nested subvolumes: refused without -Recurse, both gone with it.
            PwshResult nested = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $s -Confirm:$false", ("s", Rel("sv")));
            Assert.Equal("SubvolumeHasNested", Assert.Single(nested.ErrorIds));
            Assert.Contains("sv/inner", nested.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains("sv", Listed());

            // -WhatIf with -Recurse says how many nested subvolumes go with it, and deletes none.
            PwshResult previewNested = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $s -Recurse -WhatIf", captureHost: true, variables: new Dictionary<string, object?> { ["s"] = Rel("sv") });
            Assert.Empty(previewNested.Errors);
            Assert.Contains("and the 1 nested subvolume(s) in it", previewNested.HostText, StringComparison.Ordinal);
            Assert.True(Listed().IsSupersetOf(new[] { "sv", "sv/inner" }));

            // The default subvolume, a mounted one, one with an active swapfile: in use.
            string id = Shell.Run("btrfs", "inspect-internal", "rootid", Rel("snap-of-snap")).Trim();
            Shell.Run("btrfs", "subvolume", "set-default", id, mnt);
            string second = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "subvol-rm"), "m");
            Directory.CreateDirectory(second);
            Shell.Run("mount", "-o", "subvol=/snap", Shell.Run("findmnt", "-no", "SOURCE", mnt).Trim(), second);
            Shell.Run("btrfs", "subvolume", "create", Rel("swap"));
            PwshResult inUse;
            try
            {
                using var swap = new ActiveSwapfile(Rel("swap"));
                inUse = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a, $b, $c -Confirm:$false", ("a", Rel("snap-of-snap")), ("b", Rel("snap")), ("c", Rel("swap")));
            }
            finally
            {
                Shell.Run("umount", second);
                Shell.Run("btrfs", "subvolume", "set-default", "5", mnt);
            }

            Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse", "SubvolumeInUse" }, inUse.ErrorIds);
            Assert.Contains("default", inUse.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains(second, inUse.Errors[1].Exception.Message, StringComparison.Ordinal);
            Assert.Contains("swapfile", inUse.Errors[2].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(8, Listed().Count);

            // -Recurse checks every nested subvolume too: a default one inside keeps both; a symbolic link to a
            // subvolume is not followed.
            Shell.Run("btrfs", "subvolume", "create", Rel("outer"));
            Shell.Run("btrfs", "subvolume", "create", Rel("outer/inner"));
            Shell.Run("btrfs", "subvolume", "set-default", Shell.Run("btrfs", "inspect-internal", "rootid", Rel("outer/inner")).Trim(), mnt);
            File.CreateSymbolicLink(Rel("link"), Rel("snap"));
            PwshResult guarded;
            try
            {
                guarded = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $o, $l -Recurse -Confirm:$false", ("o", Rel("outer")), ("l", Rel("link")));
            }
            finally
            {
                Shell.Run("btrfs", "subvolume", "set-default", "5", mnt);
            }

            Assert.Equal("SubvolumeInUse", guarded.ErrorIds[0]);
            Assert.Contains("outer/inner", guarded.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains("Nothing was deleted", guarded.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(2, guarded.Errors.Count);
            Assert.NotEqual("SubvolumeInUse", guarded.ErrorIds[1]); // the link: refused as a link, not followed
            Assert.True(Listed().IsSupersetOf(new[] { "outer", "outer/inner", "snap" }));
            Shell.Run("btrfs", "subvolume", "delete", Rel("outer/inner"), Rel("outer"));
            File.Delete(Rel("link"));

            // Deleted: a read-only snapshot piped from Get-BtrfsSubvolume, and sv with its nested one; -Wait leaves nothing to clean.
            PwshResult gone = Pwsh.Run(
                "Get-BtrfsSubvolume -LiteralPath $snaps -Recurse | Where-Object IsSnapshot | Remove-BtrfsSubvolume -Confirm:$false -PassThru; Remove-BtrfsSubvolume -LiteralPath $s -Recurse -Wait -Confirm:$false -PassThru",
                ("snaps", Rel("snaps")),
                ("s", Rel("sv")));
            Assert.Empty(gone.Errors);
            Assert.Equal(new[] { Rel("snaps/ro-1"), Rel("snaps/ro-2"), Rel("sv/inner"), Rel("sv") }, gone.Objects<BtrfsSubvolumeInfo>().Select(x => x.Path));
            Assert.Equal(new[] { "d/deep", "snap", "snap-of-snap", "swap" }, Listed().OrderBy(x => x, StringComparer.Ordinal));
            Assert.False(Directory.Exists(Rel("sv")));
            string pending = Shell.Run("btrfs", "subvolume", "list", "-d", mnt);
            foreach (BtrfsSubvolumeInfo waited in gone.Objects<BtrfsSubvolumeInfo>().Skip(2))
            {
                Assert.DoesNotContain($"ID {waited.Id} ", pending, StringComparison.Ordinal); // -Wait: cleaned, not just deleted
            }
        }

        [SkippableFact]
        public void APipedSubvolumeOrNameReachesExactlyTheSubvolumeItNamesNeverALookAlike()
        {
            // The producer -> consumer pairs of the subvolume cmdlets, with names a wildcard would widen:
            // snap[1] beside snap1, v? beside vv, c[1] (a new snapshot) beside c1. Only the named one may go.
            string dir = fs.NewDirectory(TestFs.Btrfs, "subvol-literal");
            string Rel(string p) => Path.Combine(dir, p);
            foreach (string n in new[] { "snap[1]", "snap1", "v?", "vv", "c1" })
            {
                Shell.Run("btrfs", "subvolume", "create", Rel(n));
            }

            HashSet<string> Left() => Directory.GetDirectories(dir).Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal)!;

            PwshResult r = Pwsh.Run(
                """
                Get-BtrfsSubvolume -LiteralPath $a | Measure-BtrfsSubvolume | Remove-BtrfsSubvolume -Confirm:$false -PassThru
                $b | Remove-BtrfsSubvolume -Confirm:$false -PassThru
                New-BtrfsSnapshot -Path $src -Destination $c -ReadOnly | Measure-BtrfsSubvolume | Remove-BtrfsSubvolume -Confirm:$false -PassThru
                """,
                ("a", Rel("snap[1]")),
                ("b", Rel("v?")),
                ("src", Rel("snap1")),
                ("c", Rel("c[1]")));
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { Rel("snap[1]"), Rel("v?"), Rel("c[1]") }, r.Objects<BtrfsSubvolumeInfo>().Select(x => x.Path));
            Assert.Equal(new[] { "c1", "snap1", "vv" }, Left().Order(StringComparer.Ordinal));

            // A pattern typed on the command line still expands (-Path, position 0): v? now matches vv only.
            PwshResult typed = Pwsh.Run("Get-BtrfsSubvolume $p | ForEach-Object Path", ("p", Rel("v?")));
            Assert.Equal(new[] { Rel("vv") }, typed.Output.Select(o => o.BaseObject.ToString()));
        }

        [SkippableFact]
        public void APipedSubvolumeObjectIsDeletedOnlyIfItsPathStillLeadsToIt()
        {
            // Before: the object's Path was all that counted, so a stale object deleted whatever was there
            // now, and a listing gave a Path that led into another btrfs mounted over a directory on the way
            // (the same id there), whose subvolume was then deleted.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            using ExtraFileSystem q = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            Directory.CreateDirectory(P("d"));
            Shell.Run("btrfs", "subvolume", "create", P("d/sx"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(q.MountPoint, "sx"));
            File.WriteAllText(Path.Combine(q.MountPoint, "sx", "precious"), "Q");
            Assert.Equal(BtrfsProgs.RootId(P("d/sx")), BtrfsProgs.RootId(Path.Combine(q.MountPoint, "sx")));
            Shell.Run("mount", Shell.Run("findmnt", "-no", "SOURCE", q.MountPoint).Trim(), P("d"));
            try
            {
                PwshResult all = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All | Where-Object Id -ne 5", ("m", p.MountPoint));
                Assert.Empty(all.Errors);
                BtrfsSubvolumeInfo sx = Assert.Single(all.Objects<BtrfsSubvolumeInfo>());
                Assert.Null(sx.Path); // P's sx is under Q's mount: no path reaches it
                PwshResult removed = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All | Where-Object Id -ne 5 | Remove-BtrfsSubvolume -WhatIf", ("m", p.MountPoint));
                Assert.Empty(removed.Errors); // by its id on P (deleted so at the end)
                Assert.Equal("Q", File.ReadAllText(P("d/sx/precious")));
            }
            finally
            {
                Shell.Run("umount", P("d"));
            }

            Assert.True(Directory.Exists(P("d/sx")));

            // A stale object (its path renamed to another subvolume since), live or deserialized: refused.
            Shell.Run("btrfs", "subvolume", "create", P("victim"));
            Shell.Run("btrfs", "subvolume", "create", P("keep"));
            PwshResult stale = Pwsh.Run(
                """
                $o = Get-BtrfsSubvolume -LiteralPath $v
                Rename-Item -LiteralPath $v -NewName victim2; Rename-Item -LiteralPath $k -NewName victim
                $o | Remove-BtrfsSubvolume -Confirm:$false
                [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($o)) | Remove-BtrfsSubvolume -Confirm:$false
                $o | Measure-BtrfsSubvolume
                [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($o)) | Measure-BtrfsSubvolume
                $o | ConvertTo-Json | ConvertFrom-Json | Remove-BtrfsSubvolume -Confirm:$false
                $o | ConvertTo-Csv | ConvertFrom-Csv | Remove-BtrfsSubvolume -Confirm:$false
                """,
                ("v", P("victim")),
                ("k", P("keep")));
            Assert.Equal(Enumerable.Repeat("SubvolumeReplaced", 6), stale.ErrorIds);
            Assert.True(Directory.Exists(P("victim")) && Directory.Exists(P("victim2")));

            // A name that is a mount point in another mount namespace (a subvolume of another btrfs, id 256 as
            // P's own d/sx, mounted on P's plain directory there): refused. Before: P's subvolume 256 was
            // deleted by id through the parent, after the checks had looked at the other btrfs's.
            Directory.CreateDirectory(P("plain"));
            string qDevice = Shell.Run("findmnt", "-no", "SOURCE", q.MountPoint).Trim();
            var psi = new System.Diagnostics.ProcessStartInfo("unshare") { UseShellExecute = false };
            foreach (string a in new[] { "-m", "--propagation", "private", "sh", "-c", $"mount -o subvol=sx {qDevice} '{P("plain")}' && exec sleep 120" })
            {
                psi.ArgumentList.Add(a);
            }

            using (var other = System.Diagnostics.Process.Start(psi)!)
            {
                try
                {
                    string seen = $"/proc/{other.Id}/root{P("plain")}";
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    while (!File.Exists(Path.Combine(seen, "precious")))
                    {
                        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the other namespace's mount did not appear");
                        System.Threading.Thread.Sleep(20);
                    }

                    PwshResult across = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $s -Confirm:$false", ("s", seen));
                    Assert.Equal(new[] { "SubvolumeInUse" }, across.ErrorIds);
                }
                finally
                {
                    other.Kill();
                    other.WaitForExit();
                }
            }

            Assert.True(Directory.Exists(P("d/sx")));
            Assert.Equal("Q", File.ReadAllText(Path.Combine(q.MountPoint, "sx", "precious")));

            // A hand-built object's relative path means the current location, not the process's directory.
            Directory.CreateDirectory(P("here"));
            Shell.Run("btrfs", "subvolume", "create", P("here/x"));
            PwshResult relative = Pwsh.Run("Set-Location -LiteralPath $h; [Btrfs.Core.BtrfsSubvolumeInfo]@{ Path = 'x' } | Remove-BtrfsSubvolume -Confirm:$false -PassThru", ("h", P("here")));
            Assert.Empty(relative.Errors);
            Assert.Equal(P("here/x"), Assert.Single(relative.Objects<BtrfsSubvolumeInfo>()).Path);
            Assert.False(Directory.Exists(P("here/x")));

            // The object of P's d/sx while Q is mounted over d (no path reaches it): deleted by its id on P,
            // its UUID checked; Q's sx, which the path would reach, is kept.
            Shell.Run("mount", qDevice, P("d"));
            try
            {
                PwshResult byId = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All | Where-Object TopLevelPath -eq '/d/sx' | Remove-BtrfsSubvolume -Confirm:$false -PassThru", ("m", p.MountPoint));
                Assert.Empty(byId.Errors);
                Assert.Equal("/d/sx", Assert.Single(byId.Objects<BtrfsSubvolumeInfo>()).TopLevelPath);
                Assert.Equal("Q", File.ReadAllText(P("d/sx/precious")));
            }
            finally
            {
                Shell.Run("umount", P("d"));
            }

            Assert.False(Directory.Exists(P("d/sx")));
            Assert.DoesNotContain("path d/sx", Shell.Run("btrfs", "subvolume", "list", p.MountPoint), StringComparison.Ordinal);
            Assert.Equal("Q", File.ReadAllText(Path.Combine(q.MountPoint, "sx", "precious")));
        }

        [SkippableFact]
        public void ASubvolumeAProcessUsesIsNotDeleted()
        {
            // Before: the kernel deletes a subvolume under a process that has a file open in it, and that
            // process's later writes (fsync succeeding) went into the deleted subvolume and were lost.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            foreach (string name in new[] { "w", "w/in", "c", "mm" })
            {
                Shell.Run("btrfs", "subvolume", "create", P(name));
            }

            FileBuilder.Chunks(P("w/in/vm.img"), 1, 1 << 20, 1 << 20, fsyncEach: false);
            FileBuilder.Chunks(P("mm/db"), 1, 1 << 20, 1 << 20, seed: 2, fsyncEach: false);

            // A writer (in a nested subvolume), a file mapped with its descriptor closed (libc's mmap: Python's
            // mmap module keeps a descriptor of its own), and a shell whose working directory is inside.
            using (ChildProcess writer = ChildProcess.Writer(P("w/in/vm.img")))
            using (ChildProcess mapping = ChildProcess.Start(
                "python3",
                "-c",
                "import ctypes,os,sys\nlibc=ctypes.CDLL(None)\nlibc.mmap.restype=ctypes.c_void_p\nlibc.mmap.argtypes=[ctypes.c_void_p,ctypes.c_size_t,ctypes.c_int,ctypes.c_int,ctypes.c_int,ctypes.c_long]\nfd=os.open(sys.argv[1],os.O_RDONLY)\na=libc.mmap(None,4096,1,1,fd,0)\nos.close(fd)\nprint('ready',flush=True)\nsys.stdin.read()",
                P("mm/db")))
            using (ChildProcess inside = ChildProcess.Start("sh", "-c", "cd \"$1\" && echo ready && exec cat", "_", P("c")))
            {
                string before = Shell.Run("btrfs", "subvolume", "list", p.MountPoint);
                PwshResult r = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a, $b, $c -Recurse -Confirm:$false", ("a", P("w")), ("b", P("c")), ("c", P("mm")));
                Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse", "SubvolumeInUse" }, r.ErrorIds);
                Assert.Equal(new object[] { P("w"), P("c"), P("mm") }, r.Errors.Select(e => e.TargetObject));
                Assert.Contains($"pid {writer.Pid}, open", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Contains($"pid {inside.Pid}, working directory", r.Errors[1].Exception.Message, StringComparison.Ordinal);
                Assert.Contains($"pid {mapping.Pid}, mapped", r.Errors[2].Exception.Message, StringComparison.Ordinal);
                Assert.Equal(before, Shell.Run("btrfs", "subvolume", "list", p.MountPoint));
                writer.WriteAt(0, "HOLDER-WROTE-THIS");
                Assert.StartsWith("HOLDER-WROTE-THIS", File.ReadAllText(P("w/in/vm.img")), StringComparison.Ordinal);
            }

            // With them gone, the same command deletes all three.
            PwshResult ok = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a, $b, $c -Recurse -Confirm:$false", ("a", P("w")), ("b", P("c")), ("c", P("mm")));
            Assert.Empty(ok.Errors);
            Assert.False(Directory.Exists(P("w")) || Directory.Exists(P("c")) || Directory.Exists(P("mm")));
        }

        [SkippableFact]
        public void ASubvolumeNoMountReachesIsNotDeletedByIdWhileAProcessUsesIt()
        {
            // Before: by -Id, a subvolume no mount reaches was deleted without looking for its users: a process
            // that kept a file open, or its working directory, in it from before its mount was taken away
            // (umount -l) lost what it wrote afterwards. Its top directory, opened by its id through a file
            // handle, gives the device number its files show, and the checks made by path apply.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            foreach (string name in new[] { "keep", "w", "w/in", "c", "free", "ovl" })
            {
                Shell.Run("btrfs", "subvolume", "create", P(name));
            }

            FileBuilder.Chunks(P("w/in/vm.img"), 1, 1 << 20, 1 << 20, fsyncEach: false);
            Dictionary<string, string> id = new[] { "w", "w/in", "c", "free", "ovl" }.ToDictionary(n => n, n => BtrfsProgs.RootId(P(n)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            string device = Shell.Run("findmnt", "-no", "SOURCE", p.MountPoint).Trim();
            using ChildProcess writer = ChildProcess.Writer(P("w/in/vm.img"));
            using ChildProcess inside = ChildProcess.Start("sh", "-c", "cd \"$1\" && echo ready && exec cat", "_", P("c"));

            // An overlay with its layers in a subvolume: the kernel holds them, no process does.
            string merged = fs.NewDirectory(TestFs.Btrfs, "byid-overlay");
            foreach (string d in new[] { "ovl/l", "ovl/u", "ovl/w" })
            {
                Directory.CreateDirectory(P(d));
            }

            Shell.Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={P("ovl/l")},upperdir={P("ovl/u")},workdir={P("ovl/w")}", merged);
            using var unmountOverlay = new Disposer(() => Shell.Try("umount", merged));
            Shell.Run("umount", "-l", p.MountPoint);
            Shell.Run("mount", "-o", "subvol=keep", device, p.MountPoint);

            PwshResult listed = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $m -All", ("m", p.MountPoint));
            Assert.All(listed.Objects<BtrfsSubvolumeInfo>().Where(s => s.Name != "keep" && s.Id != 5), s => Assert.Null(s.Path)); // no mount reaches them
            string before = Shell.Run("btrfs", "subvolume", "list", p.MountPoint);
            PwshResult r = Pwsh.Run(
                "Remove-BtrfsSubvolume -Id $w -FileSystemPath $m -Recurse -Confirm:$false; Remove-BtrfsSubvolume -Id $c -FileSystemPath $m -Confirm:$false",
                ("w", id["w"]),
                ("c", id["c"]),
                ("m", p.MountPoint));
            Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse" }, r.ErrorIds);
            // The target is the id given (before: the path from the top level, which is no path one can use here, and
            // for an id the filesystem lacks, the -FileSystemPath, alike for every such id). Found by a hostile review.
            Assert.Equal(new object[] { ulong.Parse(id["w"], CultureInfo.InvariantCulture), ulong.Parse(id["c"], CultureInfo.InvariantCulture) }, r.Errors.Select(e => e.TargetObject));
            PwshResult missing = Pwsh.Run("Remove-BtrfsSubvolume -Id 999998, 999999 -FileSystemPath $m -WhatIf", ("m", p.MountPoint));
            Assert.Equal(new object[] { 999998UL, 999999UL }, missing.Errors.Select(e => e.TargetObject));

            Assert.Contains($"pid {writer.Pid}, open", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains("no mount reaches it", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Contains($"pid {inside.Pid}, working directory", r.Errors[1].Exception.Message, StringComparison.Ordinal);
            Assert.Equal(before, Shell.Run("btrfs", "subvolume", "list", p.MountPoint));
            writer.WriteAt(0, "HOLDER-WROTE-THIS"); // still a file of a subvolume that exists

            // Measure-BtrfsSubvolume's too (before: the sentence "subvolume 999998 of the filesystem of ..."). Found by a hostile review.
            PwshResult unmeasured = Pwsh.Run("Measure-BtrfsSubvolume -Id 999998, 999999 -FileSystemPath $m", ("m", p.MountPoint));
            Assert.Equal(new object[] { 999998UL, 999999UL }, unmeasured.Errors.Select(e => e.TargetObject));

            // The overlay's layer paths lead nowhere now (their mount was taken away): they could be in it.
            PwshResult overlaid = Pwsh.Run("Remove-BtrfsSubvolume -Id $o -FileSystemPath $m -Confirm:$false", ("o", id["ovl"]), ("m", p.MountPoint));
            Assert.Equal(new[] { "SubvolumeInUse" }, overlaid.ErrorIds);
            Assert.Contains($"the overlay mounted at '{merged}' has its layer at '{P("ovl/l")}', which leads nowhere now", overlaid.Errors[0].Exception.Message, StringComparison.Ordinal);
            static string Ids(string list) => Regex.Replace(list, @" gen \d+ ", " ");
            Assert.Equal(Ids(before), Ids(Shell.Run("btrfs", "subvolume", "list", p.MountPoint))); // the writer's write moved a generation
            File.WriteAllText(Path.Combine(merged, "still"), "written through the overlay");

            // Such an overlay could hold any subvolume: while it is mounted, one nobody uses is kept too.
            PwshResult kept = Pwsh.Run("Remove-BtrfsSubvolume -Id $f -FileSystemPath $m -Confirm:$false", ("f", id["free"]), ("m", p.MountPoint));
            Assert.Equal(new[] { "SubvolumeInUse" }, kept.ErrorIds);
            Shell.Run("umount", merged);

            // One that nobody uses goes, by its id as before.
            PwshResult ok = Pwsh.Run("Remove-BtrfsSubvolume -Id $f -FileSystemPath $m -Confirm:$false", ("f", id["free"]), ("m", p.MountPoint));
            Assert.Empty(ok.Errors);
            string after = Shell.Run("btrfs", "subvolume", "list", p.MountPoint);
            Assert.DoesNotContain(" path free", after, StringComparison.Ordinal);
            Assert.Contains(" path w/in", after, StringComparison.Ordinal);
            Assert.Contains(" path c", after, StringComparison.Ordinal);
        }

        [SkippableFact]
        public void ASubvolumeTheKernelOrAThreadUsesIsNotDeletedAndNonRootMustProveIt()
        {
            // Before: a loop device backed by a file in it, an overlay with its upper directory in it, and a
            // writer whose descriptor sits in a thread's own table (unshare CLONE_FILES) or whose first thread
            // has exited were not seen (none shows in /proc/PID/fd), and it was deleted under them; as nobody,
            // processes of other users were silently not looked at.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            foreach (string name in new[] { "lp", "ov", "th", "lx", "cw", "nb" })
            {
                Shell.Run("btrfs", "subvolume", "create", P(name));
            }

            Shell.Run("truncate", "-s", "16M", P("lp/disk.img"));
            using LoopDevice loopDevice = LoopDevice.Attach(P("lp/disk.img"));
            string loop = loopDevice.Name;
            string low = fs.NewDirectory(TestFs.Btrfs, "ovl-low"), merged = fs.NewDirectory(TestFs.Btrfs, "ovl-merged");
            Directory.CreateDirectory(P("ov/u"));
            Directory.CreateDirectory(P("ov/w"));
            Shell.Run("mount", "-t", "overlay", "none", "-o", $"lowerdir={low},upperdir={P("ov/u")},workdir={P("ov/w")}", merged);
            const string Threaded = "import ctypes,os,sys,threading,time\nlibc=ctypes.CDLL(None)\ndef w():\n  if sys.argv[2]=='unshare': libc.unshare(0x400)\n  fd=os.open(sys.argv[1],os.O_CREAT|os.O_RDWR)\n  print('ready',flush=True)\n  time.sleep(120)\nthreading.Thread(target=w).start()\nif sys.argv[2]=='exit': libc.syscall(60 if os.uname().machine=='x86_64' else 93,0)\nelse: time.sleep(120)";
            try
            {
                using (ChildProcess own = ChildProcess.Start("python3", "-c", Threaded, P("th/data"), "unshare"))
                using (ChildProcess orphaned = ChildProcess.Start("python3", "-c", Threaded, P("lx/data"), "exit"))
                {
                    // Compared without the generations: a subvolume's changes as the loop device or a process reads and
                    // writes in it (atime, the image's blocks) raise its generation meanwhile (a flaky failure: gen 7 to 8).
                    string Listed() => System.Text.RegularExpressions.Regex.Replace(Shell.Run("btrfs", "subvolume", "list", p.MountPoint), @"gen \d+ ", string.Empty);
                    string before = Listed();
                    PwshResult r = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a, $b, $c, $d -Confirm:$false", ("a", P("lp")), ("b", P("ov")), ("c", P("th")), ("d", P("lx")));
                    Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse", "SubvolumeInUse", "SubvolumeInUse" }, r.ErrorIds);
                    Assert.Contains($"the loop device {loop} is backed by '{P("lp/disk.img")}'", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                    Assert.Contains($"the overlay mounted at '{merged}' has its layer '{P("ov/u")}'", r.Errors[1].Exception.Message, StringComparison.Ordinal);
                    Assert.Contains($"pid {own.Pid}, open", r.Errors[2].Exception.Message, StringComparison.Ordinal);
                    Assert.Contains($"pid {orphaned.Pid}, open", r.Errors[3].Exception.Message, StringComparison.Ordinal);
                    Assert.Equal(before, Listed());
                }
            }
            finally
            {
                Shell.Run("umount", merged);
            }

            // The shell (and the processes) that started this one wait for it: a working directory of theirs
            // inside does not count. The test host's own working directory is moved there for the call.
            string cwd = Environment.CurrentDirectory;
            Environment.CurrentDirectory = P("cw");
            PwshResult mine;
            try
            {
                mine = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a -Confirm:$false", ("a", P("cw")));
            }
            finally
            {
                Environment.CurrentDirectory = cwd;
            }

            Assert.Empty(mine.Errors);
            Assert.False(Directory.Exists(P("cw")));

            // As nobody without user_subvol_rm_allowed the kernel refuses whatever the proof: said first (before:
            // InUseUnknown, and with -AssumeNotInUse then the kernel's EPERM), nothing deleted.
            Shell.Run("chown", "65534:65534", P("nb"));
            Shell.Run("chmod", "0777", p.MountPoint);
            RealPwsh.Result RemoveAsNobody() => RealPwsh.Run(
                "Remove-BtrfsSubvolume -LiteralPath $S -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue\n$e | ForEach-Object { $_.FullyQualifiedErrorId; $_.Exception.Message }",
                65534,
                ("S", P("nb")));
            RealPwsh.Result noOption = RemoveAsNobody();
            Assert.True(noOption.ExitCode == 0, noOption.StdErr);
            Assert.Equal("AccessDenied,Btrfs.Commands.RemoveBtrfsSubvolumeCommand", noOption.Lines[0]);
            Assert.Contains("user_subvol_rm_allowed", noOption.Lines[1], StringComparison.Ordinal);
            Assert.DoesNotContain("AssumeNotInUse", noOption.StdOut, StringComparison.Ordinal);
            Assert.True(Directory.Exists(P("nb")));

            // As nobody (user_subvol_rm_allowed): other users' processes cannot be seen, so it cannot be proven
            // that none uses it: InUseUnknown, unless -AssumeNotInUse; a use nobody can see is still refused.
            Shell.Run("mount", "-o", "remount,user_subvol_rm_allowed", p.MountPoint);
            using (ChildProcess held = ChildProcess.Writer(CreateOwnedBy(P("nb/mine"), 65534)))
            {
                RealPwsh.Result refused = RemoveAsNobody();
                Assert.True(refused.ExitCode == 0, refused.StdErr);
                Assert.Equal("InUseUnknown,Btrfs.Commands.RemoveBtrfsSubvolumeCommand", refused.Lines[0]);
                Assert.Contains("-AssumeNotInUse", refused.StdOut, StringComparison.Ordinal);
                Assert.True(Directory.Exists(P("nb")));
                held.WriteAt(0, "HOLDER-WROTE-THIS");
            }

            // Root's writer gone: with -AssumeNotInUse nobody deletes it (the flag overrides only what cannot be seen).
            RealPwsh.Result ok = RealPwsh.Run("Remove-BtrfsSubvolume -LiteralPath $S -Confirm:$false -AssumeNotInUse", 65534, ("S", P("nb")));
            Assert.True(ok.ExitCode == 0 && ok.StdErr.Length == 0, ok.StdOut + ok.StdErr);
            Assert.False(Directory.Exists(P("nb")));
        }

        /// <summary>Before: a user other than root, who cannot look the source up by its UUID, got New-BtrfsSnapshot's SourcePath empty.</summary>
        [SkippableFact]
        public void ASnapshotNamesItsSourceAlsoForAUserOtherThanRoot()
        {
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            Directory.CreateDirectory(P("nb"));
            Shell.Run("btrfs", "subvolume", "create", P("nb/src"));
            Shell.Run("chown", "-R", "65534:65534", P("nb"));
            RealPwsh.Result r = RealPwsh.Run("$s = New-BtrfsSnapshot $S $D -Confirm:$false; '@@' + $s.SourcePath", 65534, ("S", P("nb/src")), ("D", P("nb/snap")));
            Assert.True(r.ExitCode == 0 && r.StdErr.Length == 0, r.StdOut + r.StdErr);
            Assert.Equal(P("nb/src"), r.Marked[0]);
            Assert.True(Directory.Exists(P("nb/snap")));
        }

        private static string CreateOwnedBy(string path, int uid)
        {
            File.WriteAllBytes(path, new byte[4096]);
            Shell.Run("chown", $"{uid}:{uid}", path);
            return path;
        }

        [SkippableFact]
        public void NamespacesNoProcessIsInAreReadFromInsideAndAFifoInTheirPlaceDoesNotHang()
        {
            // Before: such namespaces were read by running nsenter and the namespace's own cat (which its root
            // could replace, and which could keep the check waiting forever); an overlay in one was skipped, and
            // one kept inside another was never read.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            Shell.Run("btrfs", "subvolume", "create", P("ov"));
            Shell.Run("btrfs", "subvolume", "create", P("nest"));
            Directory.CreateDirectory(P("ov/u"));
            Directory.CreateDirectory(P("ov/w"));
            string pin = fs.NewDirectory(TestFs.Btrfs, "pin-a"), pinB = fs.NewDirectory(TestFs.Btrfs, "pin-b");
            string low = fs.NewDirectory(TestFs.Btrfs, "pin-low"), merged = fs.NewDirectory(TestFs.Btrfs, "pin-merged"), target = fs.NewDirectory(TestFs.Btrfs, "pin-target");
            string a = Path.Combine(pin, "a"), b = Path.Combine(pinB, "b");
            Shell.Run("sh", "-c", $"mount --bind '{pin}' '{pin}' && mount --make-private '{pin}' && touch '{a}'");
            try
            {
                string inB = $"mount --bind '{P("nest")}' '{target}'";
                string inA = $"mount -t overlay none -o lowerdir={low},upperdir={P("ov/u")},workdir={P("ov/w")} '{merged}' && mount -t tmpfs t '{pinB}' && for i in 1 2 3 4 5 6 7 8 9 10; do touch '{b}'; unshare --mount='{b}' --propagation private sh -c \"{inB}\" && exit 0; umount '{b}' 2>/dev/null; sleep 0.05; done; exit 1";
                // (util-linux 2.38's unshare fails now and then, EINVAL, to keep a namespace made inside a kept one: 14 of 40 here)
                KeptNamespace.Make(a, inA);
                string before = Shell.Run("btrfs", "subvolume", "list", p.MountPoint);
                PwshResult r = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $o, $n -Confirm:$false", ("o", P("ov")), ("n", P("nest")));
                Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse" }, r.ErrorIds);
                Assert.Contains($"the overlay mounted at '{merged}' in another mount namespace (one no process is in, kept at '{a}') has its layer '{P("ov/u")}'", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Contains($"(one no process is in, kept at '{b}' inside one no process is in, kept at '{a}'), where '{target}' shows it", r.Errors[1].Exception.Message, StringComparison.Ordinal);
                Assert.Equal(before, Shell.Run("btrfs", "subvolume", "list", p.MountPoint));

                // A FIFO where the namespace's file was (a mount over it): the check does not wait on it.
                Shell.Run("sh", "-c", $"mount -t tmpfs t '{pin}' && mkfifo '{a}'");
                try
                {
                    var run = System.Threading.Tasks.Task.Run(() => Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $o -WhatIf", ("o", P("ov"))));
                    Assert.True(run.Wait(TimeSpan.FromSeconds(60)), "the check waited on a FIFO in place of a namespace file");
                }
                finally
                {
                    Shell.Run("umount", pin);
                }
            }
            finally
            {
                Shell.Run("sh", "-c", $"umount '{a}'; umount '{pin}'");
            }
        }

        [SkippableFact]
        public void ASubvolumeInUseInAnotherMountNamespaceIsNotDeleted()
        {
            // Before: only this process's mount table was read, so a subvolume a container (or any process
            // in a mount namespace of its own) had mounted, or had a mount inside, was deleted under it.
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string P(string x) => Path.Combine(p.MountPoint, x);
            foreach (string name in new[] { "bound", "holder", "byid" })
            {
                Shell.Run("btrfs", "subvolume", "create", P(name));
            }

            Directory.CreateDirectory(P("holder/dir"));
            Directory.CreateDirectory(P("target"));
            File.WriteAllText(P("bound/data"), "kept");
            var others = new List<System.Diagnostics.Process>();
            try
            {
                // One namespace shows bound (a bind mount); another has a tmpfs on a directory inside holder;
                // a third has byid mounted with subvolid= (reached here by path too: -Id plans by the path).
                foreach (string script in new[]
                {
                    $"mount --bind '{P("bound")}' '{P("target")}' && exec sleep 120",
                    $"mount -t tmpfs none '{P("holder/dir")}' && exec sleep 120",
                    $"mount -o subvolid={BtrfsProgs.RootId(P("byid"))} {Shell.Run("findmnt", "-no", "SOURCE", p.MountPoint).Trim()} '{P("target")}' && exec sleep 120",
                })
                {
                    var psi = new System.Diagnostics.ProcessStartInfo("unshare") { UseShellExecute = false };
                    foreach (string a in new[] { "-m", "--propagation", "private", "sh", "-c", script })
                    {
                        psi.ArgumentList.Add(a);
                    }

                    var other = System.Diagnostics.Process.Start(psi)!;
                    others.Add(other);
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    while (File.ReadAllText($"/proc/{other.Id}/mountinfo") == File.ReadAllText("/proc/self/mountinfo") || !File.ReadAllText($"/proc/{other.Id}/mountinfo").Contains(p.MountPoint + "/", StringComparison.Ordinal))
                    {
                        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the other namespace's mount did not appear");
                        System.Threading.Thread.Sleep(20);
                    }
                }

                string before = Shell.Run("btrfs", "subvolume", "list", p.MountPoint);
                PwshResult r = Pwsh.Run(
                    """
                    Remove-BtrfsSubvolume -LiteralPath $a, $b -Confirm:$false
                    Remove-BtrfsSubvolume -Id $i -FileSystemPath $m -Confirm:$false
                    """,
                    ("a", P("bound")),
                    ("b", P("holder")),
                    ("i", BtrfsProgs.RootId(P("byid"))),
                    ("m", p.MountPoint));
                Assert.Equal(new[] { "SubvolumeInUse", "SubvolumeInUse", "SubvolumeInUse" }, r.ErrorIds);
                for (int k = 0; k < 3; k++)
                {
                    Assert.Contains($"another mount namespace (that of process {others[k].Id}", r.Errors[k].Exception.Message, StringComparison.Ordinal);
                }

                Assert.Equal(before, Shell.Run("btrfs", "subvolume", "list", p.MountPoint));
                Assert.Equal("kept", File.ReadAllText(P("bound/data")));
            }
            finally
            {
                foreach (var other in others)
                {
                    other.Kill();
                    other.WaitForExit();
                    other.Dispose();
                }
            }

            // Their namespaces gone, the same commands delete them: the refusals were about those mounts.
            PwshResult after = Pwsh.Run("Remove-BtrfsSubvolume -LiteralPath $a, $b, $c -Confirm:$false", ("a", P("bound")), ("b", P("holder")), ("c", P("byid")));
            Assert.Empty(after.Errors);
            Assert.False(Directory.Exists(P("bound")) || Directory.Exists(P("holder")) || Directory.Exists(P("byid")));
        }

        [SkippableFact]
        public void OtherFileSystemsAndConflictingSwitchesAreOneErrorEach()
        {
            string xfs = fs.NewDirectory(TestFs.Xfs, "subvol");
            PwshResult r = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $x", ("x", xfs));
            Assert.Equal("OperationNotSupported", Assert.Single(r.ErrorIds));
            Assert.Equal(xfs, r.Errors[0].TargetObject);
            Assert.Contains("only btrfs has subvolumes", r.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("extent items", r.Errors[0].Exception.Message, StringComparison.Ordinal); // before: the extent readers' words

            PwshResult both = Pwsh.Run("Get-BtrfsSubvolume -LiteralPath $x -All -Recurse", ("x", xfs));
            Assert.Equal("RecurseWithAll", Assert.Single(both.ErrorIds));
        }

        [SkippableFact]
        public void AnErrorsTargetIsThePathGivenEvenWhereTheMessageNamesItsParent()
        {
            // Before: Remove-, Measure- and New-BtrfsSubvolume gave the missing parent ('nodir/x') as the target of
            // the error for 'nodir/x/y', so a script could not match the error to its input. Found by a hostile review.
            string missing = Path.Combine(fs.NewDirectory(TestFs.Btrfs, "target"), "nodir", "x", "y");
            foreach (string command in new[] { "Remove-BtrfsSubvolume -LiteralPath $p -Confirm:$false", "Measure-BtrfsSubvolume -LiteralPath $p", "New-BtrfsSubvolume $p", "Get-BtrfsSubvolume -LiteralPath $p" })
            {
                PwshResult r = Pwsh.Run(command, ("p", missing));
                Assert.Equal("PathNotFound", Assert.Single(r.ErrorIds));
                Assert.True(missing.Equals(r.Errors[0].TargetObject), $"{command}: {r.Errors[0].TargetObject}");
            }

            // New-BtrfsSnapshot too: a missing directory is named as the snapshot's, the destination the target; a
            // destination that is a mount point is taken (before: "it is on ext4", of the directory it is mounted on).
            // Found by a hostile review.
            using ExtraFileSystem own = fs.NewFileSystem("btrfs", "256M");
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(own.MountPoint, "sv"));
            string nowhere = Path.Combine(own.MountPoint, "nope", "x");
            PwshResult snap = Pwsh.Run("New-BtrfsSnapshot $s $a; New-BtrfsSnapshot $s $b", ("s", Path.Combine(own.MountPoint, "sv")), ("a", nowhere), ("b", own.MountPoint));
            Assert.Equal(new[] { "PathNotFound", "DestinationExists" }, snap.ErrorIds);
            Assert.Equal(new object[] { nowhere, own.MountPoint }, snap.Errors.Select(e => e.TargetObject));
            Assert.Contains("Cannot create the snapshot", snap.Errors[0].Exception.Message, StringComparison.Ordinal);
            Assert.Empty(snap.Output);
        }

        [SkippableFact]
        public void ASubvolumeNoMountReachesIsNoSourceForASnapshotNotItsTopLevelPathAsAPath()
        {
            // Before: its object, piped or given to -Path, bound its text (TopLevelPath, "/hidden") as a path of this host:
            // "Cannot open '/hidden'", and where that path was another subvolume only the Uuid check kept it from being
            // snapshotted (a hostile review).
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(p.MountPoint, "x"));
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(p.MountPoint, "hidden"));
            Shell.Run("umount", p.MountPoint);
            Shell.Run("mount", "-o", "loop,subvol=x", p.Image, p.MountPoint);
            string[] before = FileFacts.Listing(p.MountPoint);
            PwshResult r = Pwsh.Run(
                """
                $o = Get-BtrfsSubvolume -LiteralPath $m -All | Where-Object Name -eq hidden
                $o | New-BtrfsSnapshot -Destination (Join-Path $m snap1)
                $o | New-BtrfsSnapshot -Destination (Join-Path $m snap1) -WhatIf
                New-BtrfsSnapshot -Path $o -Destination (Join-Path $m snap1)
                $j = $o | ConvertTo-Json | ConvertFrom-Json
                $j | New-BtrfsSnapshot -Destination (Join-Path $m snap1)
                New-BtrfsSnapshot -Path $j -Destination (Join-Path $m snap1)
                $c = $o | ConvertTo-Csv | ConvertFrom-Csv
                New-BtrfsSnapshot -Path $c -Destination (Join-Path $m snap1)
                """,
                ("m", p.MountPoint));
            // Read back from JSON or CSV (Path empty) too (before: its text "@{Id=257; ...}" as a path; a review).
            Assert.Equal(Enumerable.Repeat("ObjectNamesNoFile", 6), r.ErrorIds);
            Assert.All(r.Errors, e => Assert.Contains("it names no file a path can reach", e.Exception.Message, StringComparison.Ordinal));
            Assert.Equal(before, FileFacts.Listing(p.MountPoint));
        }

        [SkippableFact]
        public void AStaleObjectGivenOnTheCommandLineIsCheckedByItsUuidAsAPipedOneIs()
        {
            // Before: piped, a stale object (its path now another subvolume) was refused (SubvolumeReplaced); given to
            // -Path or -LiteralPath, its Uuid was not bound, and the subvolume now at its path was snapshotted, measured,
            // or (-WhatIf said) deleted (a hostile review).
            using ExtraFileSystem p = fs.NewFileSystem("btrfs", "256M");
            string plain = Path.Combine(p.MountPoint, "plain");
            Shell.Run("btrfs", "subvolume", "create", plain);
            PwshResult r = Pwsh.Run(
                """
                $o = Get-BtrfsSubvolume -LiteralPath $s
                & btrfs subvolume delete $s | Out-Null; & btrfs subvolume create $s | Out-Null
                New-BtrfsSnapshot -Path $o -Destination (Join-Path $m r1)
                New-BtrfsSnapshot -LiteralPath $o -Destination (Join-Path $m r2)
                New-BtrfsSnapshot $o (Join-Path $m r3)
                Remove-BtrfsSubvolume -Path $o -Confirm:$false
                Remove-BtrfsSubvolume -LiteralPath $o -WhatIf
                Measure-BtrfsSubvolume -Path $o
                Measure-BtrfsSubvolume -LiteralPath $o
                """,
                ("s", plain),
                ("m", p.MountPoint));
            Assert.Equal(Enumerable.Repeat("SubvolumeReplaced", 7), r.ErrorIds);
            Assert.Empty(r.Objects<BtrfsSubvolumeInfo>());
            Assert.True(Directory.Exists(plain));
            Assert.Equal(new[] { "plain" }, FileFacts.Listing(p.MountPoint));

            // One whose Uuid is empty is refused, as a piped one is (InvalidArgument), never taken as none (a review).
            PwshResult empty = Pwsh.Run("$e = [pscustomobject]@{ Path = $s; Uuid = '' }; New-BtrfsSnapshot -Path $e -Destination (Join-Path $m r5); $e | New-BtrfsSnapshot -Destination (Join-Path $m r6)", ("s", plain), ("m", p.MountPoint));
            Assert.Equal(new[] { "InvalidArgument", "InvalidArgument" }, empty.ErrorIds);
            Assert.Equal(new[] { "plain" }, FileFacts.Listing(p.MountPoint));

            // A current object given so is taken.
            PwshResult ok = Pwsh.Run("$o = Get-BtrfsSubvolume -LiteralPath $s; New-BtrfsSnapshot -Path $o -Destination (Join-Path $m r4); Measure-BtrfsSubvolume -LiteralPath $o", ("s", plain), ("m", p.MountPoint));
            Assert.Empty(ok.Errors);
            Assert.Single(ok.Output.Select(o => o.BaseObject).OfType<BtrfsSubvolumeInfo>());
            Assert.Single(ok.Output.Select(o => o.BaseObject).OfType<BtrfsSubvolumeUsage>());
        }
    }
}
