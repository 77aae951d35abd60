namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>Every cmdlet that changes files or subvolumes, given a path through another user's symbolic link.</summary>
    [Collection(FileSystemCollection.Name)]
    public class ForeignLinkTests(LoopFileSystems fs)
    {
        [SkippableFact]
        public void APathThroughAnotherUsersLinkIsRefusedByEveryCmdletThatChangesThingsAndRootsOwnLinkIsFollowed()
        {
            // A hostile test: in a shared sticky directory, user nobody's link 'backups' led to root's directory: as root,
            // Remove-BtrfsSubvolume shared/backups/old deleted root's subvolume, New-BtrfsSnapshot put a snapshot of a
            // private subvolume where nobody could read it, ConvertTo-NoCow converted the file nobody chose. Only the last
            // name was taken without following a link; New-BtrfsReflink already refused links on the way.
            string dir = fs.NewDirectory(TestFs.Btrfs, "foreign-link");
            string shared = Directory.CreateDirectory(Path.Combine(dir, "shared")).FullName;
            string precious = Directory.CreateDirectory(Path.Combine(dir, "precious")).FullName;
            Shell.Run("chmod", "1777", shared);
            Shell.Run("chmod", "700", precious);
            string old = Path.Combine(precious, "old");
            Shell.Run("btrfs", "subvolume", "create", old);
            FileBuilder.WriteNew(Path.Combine(old, "data"), FileBuilder.RandomBytes(4096, 1));
            string db = Path.Combine(precious, "db");
            FileBuilder.Chunks(db, 4, 4096, 65536, seed: 2);
            File.WriteAllBytes(Path.Combine(precious, "empty"), Array.Empty<byte>());
            string id = Shell.Run("btrfs", "subvolume", "show", old).Split('\n').First(l => l.Contains("Subvolume ID:", StringComparison.Ordinal)).Split(':')[1].Trim();
            string link = Path.Combine(shared, "backups");
            File.CreateSymbolicLink(link, precious);
            Shell.Run("chown", "-h", "65534:65534", link);
            string[] listing = FileFacts.Listing(precious);
            FileFacts dbBefore = FileFacts.Of(db), emptyBefore = FileFacts.Of(Path.Combine(precious, "empty"));
            string attrs = FileFacts.Attributes(db);

            foreach (string script in new[]
            {
                "Remove-BtrfsSubvolume -Path ($l + '/old') -Confirm:$false",
                "Remove-BtrfsSubvolume -Id $id -FileSystemPath $l -Confirm:$false",
                "New-BtrfsSnapshot -Path $o -Destination ($l + '/snap') -Confirm:$false",
                "New-BtrfsSnapshot -Path ($l + '/old') -Destination ($d + '/snap') -Confirm:$false",
                "New-BtrfsSubvolume -Path ($l + '/new') -Confirm:$false",
                "ConvertTo-NoCow -Path ($l + '/db') -Confirm:$false",
                "Set-NoCow -LiteralPath ($l + '/empty') -Confirm:$false",
                "Invoke-BtrfsDefrag -LiteralPath ($l + '/db') -Confirm:$false",
                "New-BtrfsSwapfile -Path ($l + '/swap') -Size 1MB -Confirm:$false",
            })
            {
                PwshResult r = Pwsh.Run(script, ("l", link), ("o", old), ("d", dir), ("id", ulong.Parse(id, System.Globalization.CultureInfo.InvariantCulture)));
                Assert.True(r.ErrorIds.SequenceEqual(new[] { "PathIsSymbolicLink" }), script + ": " + string.Join(" / ", r.Errors.Select(e => e.FullyQualifiedErrorId + " " + e.Exception.Message)));
                Assert.Contains($"'{link}' is a symbolic link that belongs to user 65534", r.Errors[0].Exception.Message, StringComparison.Ordinal);
                Assert.Equal(listing, FileFacts.Listing(precious));
                Assert.Equal(new[] { "data" }, FileFacts.Listing(old));
                Assert.Equal(dbBefore, FileFacts.Of(db));
                Assert.Equal(attrs, FileFacts.Attributes(db));
                Assert.Equal(emptyBefore, FileFacts.Of(Path.Combine(precious, "empty")));
                Assert.False(Directory.Exists(Path.Combine(dir, "snap")), script);
            }

            // Root's own link is followed, as before.
            string mine = Path.Combine(dir, "mine");
            File.CreateSymbolicLink(mine, precious);
            PwshResult ok = Pwsh.Run("ConvertTo-NoCow -Path ($l + '/db') -Confirm:$false; New-BtrfsSnapshot -Path ($l + '/old') -Destination ($l + '/snap') -Confirm:$false | Out-Null; Remove-BtrfsSubvolume -Path ($l + '/snap') -Confirm:$false", ("l", mine));
            Assert.Empty(ok.Errors);
            Assert.True(FileFacts.HasNoCow(db));
            Assert.False(Directory.Exists(Path.Combine(precious, "snap")));
        }

        [SkippableFact]
        public void TrustedLinksAreFollowedAsTheKernelWouldUpThroughDotDotAndNeverByADecodedName()
        {
            // A review of the change above: a link 'current -> ../snapshots/vol' (the usual layout) was refused for leading
            // through '..'; and a link whose target is not UTF-8 was followed as decoded with U+FFFD, which names another
            // directory (here a decoy of that name) or nothing.
            string dir = fs.NewDirectory(TestFs.Btrfs, "trusted-link");
            string snapshots = Directory.CreateDirectory(Path.Combine(dir, "snapshots")).FullName;
            string links = Directory.CreateDirectory(Path.Combine(dir, "links")).FullName;
            Shell.Run("btrfs", "subvolume", "create", Path.Combine(snapshots, "vol"));
            File.CreateSymbolicLink(Path.Combine(links, "current"), "../snapshots/vol");
            PwshResult ok = Pwsh.Run("New-BtrfsSnapshot -Path $c -Destination $d -ReadOnly -Confirm:$false | Out-Null; Remove-BtrfsSubvolume -Path $d -Confirm:$false", ("c", Path.Combine(links, "current")), ("d", Path.Combine(snapshots, "snap")));
            Assert.Empty(ok.Errors);
            Assert.False(Directory.Exists(Path.Combine(snapshots, "snap")));

            // Not UTF-8: refused, and the decoy is left alone.
            Shell.Run("bash", "-c", "cd \"$1\" && mkdir $'real\\xff' $'real\\xef\\xbf\\xbd' && : > $'real\\xef\\xbf\\xbd/db' && ln -s $'real\\xff' odd", "_", dir);
            string decoy = Path.Combine(dir, "real\uFFFD", "db");
            FileFacts before = FileFacts.Of(decoy);
            PwshResult r = Pwsh.Run("Set-NoCow -LiteralPath ($o + '/db') -Confirm:$false; New-BtrfsSubvolume -Path ($o + '/new') -Confirm:$false", ("o", Path.Combine(dir, "odd")));
            Assert.Equal(new[] { "NameNotUtf8", "NameNotUtf8" }, r.ErrorIds);
            Assert.Equal(before, FileFacts.Of(decoy));
            Assert.False(FileFacts.HasNoCow(decoy));
            Assert.Equal(new[] { "db" }, FileFacts.Listing(Path.Combine(dir, "real\uFFFD")));
        }

        [SkippableFact]
        public void ALinkAsTheLastNameIsFollowedFromItsOwnDirectoryNeverFromATextOfWhereThatIs()
        {
            // A hostile test: a relative link at the end of a path was followed by joining its target to the text of its
            // directory's path (/proc/self/fd/N's, with U+FFFD for bytes that are not UTF-8, or another namespace's path read
            // in this one), and that text led to a decoy. A /proc link to a deleted file ("NAME (deleted)") likewise.
            string dir = fs.NewDirectory(TestFs.Btrfs, "last-link");
            Shell.Run("bash", "-c", "cd \"$1\" && mkdir $'real\\xff' $'real\\xef\\xbf\\xbd' && echo REAL > $'real\\xff/f' && echo DECOY > $'real\\xef\\xbf\\xbd/f' && ln -s f $'real\\xff/lnk'", "_", dir);
            var psi = new System.Diagnostics.ProcessStartInfo("bash") { UseShellExecute = false };
            foreach (string a in new[] { "-c", "cd \"$1\"/$'real\\xff' && exec sleep 60", "_", dir })
            {
                psi.ArgumentList.Add(a);
            }

            using var inside = System.Diagnostics.Process.Start(psi)!;
            try
            {
                string cwd = $"/proc/{inside.Id}/cwd";
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (!File.Exists(Path.Combine(cwd, "f")))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "the process did not start");
                    System.Threading.Thread.Sleep(20);
                }

                string copy = Path.Combine(dir, "copy");
                PwshResult r = Pwsh.Run("New-BtrfsReflink -LiteralPath $l -Destination $c | Out-Null", ("l", cwd + "/lnk"), ("c", copy));
                Assert.Empty(r.Errors);
                Assert.Equal("REAL\n", File.ReadAllText(copy));

                // A '..' after a /proc link goes up from where that link leads (the kernel's), not back into /proc by the text.
                Shell.Run("bash", "-c", "cd \"$1\" && mkdir other && echo OTHER > other/f", "_", dir);
                string viaProc = Path.Combine(dir, "via-proc");
                File.CreateSymbolicLink(viaProc, cwd + "/../other/f");
                PwshResult up = Pwsh.Run("New-BtrfsReflink -LiteralPath $l -Destination $c | Out-Null", ("l", viaProc), ("c", Path.Combine(dir, "copy-up")));
                Assert.Empty(up.Errors);
                Assert.Equal("OTHER\n", File.ReadAllText(Path.Combine(dir, "copy-up")));

                // A /proc link to a file as the last name: refused, never followed by its text.
                File.WriteAllText(Path.Combine(dir, "gone"), "GONE\n");
                File.WriteAllText(Path.Combine(dir, "gone (deleted)"), "DECOY\n");
                PwshResult fd = Pwsh.Run(
                    "$s = [System.IO.File]::Open($g, 'Open', 'Read', 'ReadWrite,Delete'); try { [System.IO.File]::Delete($g); New-BtrfsReflink -LiteralPath ('/proc/self/fd/' + $s.SafeFileHandle.DangerousGetHandle()) -Destination $c2 } finally { $s.Dispose() }",
                    ("g", Path.Combine(dir, "gone")),
                    ("c2", Path.Combine(dir, "copy2")));
                Assert.Equal(new[] { "PathIsSymbolicLink" }, fd.ErrorIds);
                Assert.False(File.Exists(Path.Combine(dir, "copy2")));
            }
            finally
            {
                inside.Kill();
                inside.WaitForExit();
            }
        }
    }
}
