namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>
    /// A mount that no longer answers (a stale sshfs or NFS mount; here a FUSE daemon that withholds every
    /// answer) elsewhere on the system holds no cmdlet: the mount table scans, in-use checks, subvolume maps
    /// and swap checks never ask it, nor a file a process holds open there, nor a loop device's backing file there. Every cmdlet once, on a btrfs tree, with the dead mount beside it.
    /// </summary>
    [Collection(FileSystemCollection.Name)]
    public class DeadMountTests(LoopFileSystems fs)
    {
        /// <summary>The script finished while the mount withheld every answer, without errors, and each of its counts (the last output object's properties) is above 0.</summary>
        private static void AssertEachRanWithoutWaiting(bool ran, int withheld, PwshResult? r, string what)
        {
            Assert.True(ran, $"{what} waited for a mount that does not answer ({withheld} request(s) withheld); once answered it gave: {r?.Output.LastOrDefault()}");
            Assert.Equal(0, withheld);
            Assert.True(r!.Errors.Count == 0, string.Join(" / ", r.Errors.Select(e => e.ToString())));
            var counts = r.Output[^1].Properties.ToDictionary(p => p.Name, p => (int)p.Value);
            Assert.DoesNotContain(counts, c => c.Value == 0); // each cmdlet did its work
        }

        [SkippableFact]
        public void NoCmdletWaitsForAMountThatNoLongerAnswers()
        {
            string mnt = Directory.CreateDirectory(Path.Combine(fs.Root, "dead-" + Guid.NewGuid().ToString("N")[..8])).FullName;
            string dir = fs.NewDirectory(TestFs.Btrfs, "beside-dead");
            string sv = Path.Combine(dir, "sv");
            Shell.Run("btrfs", "subvolume", "create", sv);
            FileBuilder.WriteNew(Path.Combine(sv, "a.img"), Enumerable.Repeat((byte)7, 1 << 20).ToArray());
            FileBuilder.WriteNew(Path.Combine(sv, "b.img"), Enumerable.Repeat((byte)7, 1 << 20).ToArray());
            FileBuilder.WriteNew(Path.Combine(sv, "empty"), Array.Empty<byte>());
            PwshResult? r = null;
            bool ran;
            int withheld;
            using (HangingFuse fuse = HangingFuse.Mount(mnt))
            using (ChildProcess holder = ChildProcess.HoldingOpen(fuse.FilePath)) // what the in-use scans meet in /proc
            using (LoopDevice loop = LoopDevice.Attach(fuse.FilePath, readOnly: true)) // what the kernel-use checks ask the kernel about
            {
                fuse.HangAll();
                (ran, withheld) = fuse.Await(() => r = Pwsh.Run(
                    """
                    $a = Join-Path $sv a.img; $b = Join-Path $sv b.img
                    $o = [ordered]@{}
                    $o.Subvolumes = @(Get-BtrfsSubvolume -LiteralPath $dir).Count
                    $o.Extents = @(Get-BtrfsExtent -LiteralPath $a).Count
                    $o.Owners = @(Get-BtrfsExtentOwner -LiteralPath $a).Count
                    $o.Map = @(Show-ExtentMap -LiteralPath $a).Count
                    $o.Fragmentation = @(Measure-Fragmentation -LiteralPath $a).Count
                    $o.Usage = @(Measure-BtrfsUsage -LiteralPath $sv -Recurse).Count
                    $o.Duplicates = @(Find-BtrfsDuplicate -LiteralPath $sv -Recurse).Count
                    $o.Dedupe = @(Invoke-BtrfsDedupe -LiteralPath $a -Destination $b -Confirm:$false).Count
                    $o.Reflink = @(New-BtrfsReflink -LiteralPath $a -Destination (Join-Path $sv c.img)).Count
                    $o.ReflinkForce = @(New-BtrfsReflink -LiteralPath $a -Destination (Join-Path $sv c.img) -Force -Confirm:$false).Count
                    $o.ToNoCow = @(ConvertTo-NoCow -LiteralPath $b -Confirm:$false -PassThru).Count
                    $o.FromNoCow = @(ConvertFrom-NoCow -LiteralPath $b -Confirm:$false -PassThru).Count
                    $o.TestNoCow = @(Test-NoCow -LiteralPath $b).Count
                    Set-NoCow -LiteralPath (Join-Path $sv empty) -Confirm:$false
                    $o.Defrag = @(Invoke-BtrfsDefrag -LiteralPath $a -Confirm:$false).Count
                    $o.Swapfile = @(New-BtrfsSwapfile -Path (Join-Path $dir swap) -Size 1MB -Confirm:$false).Count
                    $o.TestSwapfile = @(Test-BtrfsSwapfile -LiteralPath (Join-Path $dir swap)).Count
                    $o.Subvolume = @(New-BtrfsSubvolume -Path (Join-Path $dir new) -Confirm:$false).Count
                    $o.Snapshot = @(New-BtrfsSnapshot -LiteralPath $sv -Destination (Join-Path $dir snap) -Confirm:$false).Count
                    $o.Measure = @(Measure-BtrfsSubvolume -LiteralPath $sv).Count
                    Remove-BtrfsSubvolume -LiteralPath (Join-Path $dir snap) -WhatIf
                    Remove-BtrfsSubvolume -LiteralPath (Join-Path $dir snap) -Confirm:$false
                    Remove-BtrfsSubvolume -LiteralPath (Join-Path $dir new) -Confirm:$false -Wait
                    [pscustomobject]$o
                    """,
                    ("dir", dir),
                    ("sv", sv)),
                    TimeSpan.FromSeconds(180));
            }

            AssertEachRanWithoutWaiting(ran, withheld, r, "a cmdlet");
            Assert.False(Directory.Exists(Path.Combine(dir, "snap")));
            Assert.False(Directory.Exists(Path.Combine(dir, "new")));
        }

        /// <summary>
        /// An active swapfile whose path now leads into a mount that does not answer (here: the dead mount covers its
        /// directory; on a real system, a swapfile on NFS whose server is gone): the swap checks every replacing,
        /// deduplicating and swapfile cmdlet makes do not wait for it.
        /// </summary>
        [SkippableFact]
        public void NoSwapCheckWaitsForASwapfileBehindAMountThatNoLongerAnswers()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-behind-dead");
            string swapDir = Directory.CreateDirectory(Path.Combine(dir, "swapdir")).FullName;
            PwshResult? r = null;
            bool ran;
            int withheld;
            using (ActiveSwapfile swap = new(swapDir)) // switched off after the dead mount is gone: swapoff looks the path up
            {
                Assert.Contains(swap.Path, File.ReadAllText("/proc/swaps"));
                FileBuilder.WriteNew(Path.Combine(dir, "a.img"), Enumerable.Repeat((byte)7, 1 << 20).ToArray());
                FileBuilder.WriteNew(Path.Combine(dir, "b.img"), Enumerable.Repeat((byte)7, 1 << 20).ToArray());
                Shell.Run("btrfs", "subvolume", "create", Path.Combine(dir, "sv"));
                using HangingFuse fuse = HangingFuse.Mount(swapDir);
                fuse.HangAll();
                (ran, withheld) = fuse.Await(() => r = Pwsh.Run(
                    """
                    $a = Join-Path $dir a.img; $b = Join-Path $dir b.img
                    $o = [ordered]@{}
                    $o.Dedupe = @(Invoke-BtrfsDedupe -LiteralPath $a -Destination $b -Confirm:$false).Count
                    $o.ReflinkForce = @(New-BtrfsReflink -LiteralPath $a -Destination $b -Force -Confirm:$false).Count
                    $o.Duplicates = @(Find-BtrfsDuplicate -LiteralPath $dir -Recurse | Invoke-BtrfsDedupe -Confirm:$false).Count
                    $o.ToNoCow = @(ConvertTo-NoCow -LiteralPath $b -Confirm:$false -PassThru).Count
                    $o.Swapfile = @(New-BtrfsSwapfile -Path (Join-Path $dir other) -Size 1MB -Confirm:$false).Count
                    $o.SwapfileForce = @(New-BtrfsSwapfile -Path (Join-Path $dir other) -Size 1MB -Force -Confirm:$false).Count
                    $o.TestSwapfile = @(Test-BtrfsSwapfile -LiteralPath (Join-Path $dir other)).Count
                    Remove-BtrfsSubvolume -LiteralPath (Join-Path $dir sv) -Confirm:$false
                    [pscustomobject]$o
                    """,
                    ("dir", dir)),
                    TimeSpan.FromSeconds(120));
            }

            AssertEachRanWithoutWaiting(ran, withheld, r, "a swap check");
            Assert.False(Directory.Exists(Path.Combine(dir, "sv")));
        }

        /// <summary>
        /// Before: the swap checks took the mount a swapfile's path is on to be the last listed at the deepest
        /// mount point, but mountinfo lists mounts in the order they were made: a btrfs moved (mount --move) on top
        /// of a FUSE mount was taken for the FUSE mount, its active swapfile was not looked up, and New-BtrfsSwapfile
        /// -Force went on to replace it (stopped only by the write lease, with a message about an unknown user).
        /// Now the mount is found as a lookup finds it, and the swapfile is refused as one.
        /// </summary>
        [SkippableFact]
        public void ASwapfileOnAMountMovedOntoAnotherIsStillKnownAsOne()
        {
            string dir = fs.NewDirectory(TestFs.Btrfs, "swap-moved");
            Directory.CreateDirectory(Path.Combine(dir, "sv"));
            string arena = Directory.CreateDirectory(Path.Combine(fs.Root, "arena-" + Guid.NewGuid().ToString("N")[..8])).FullName;
            Shell.Run("mount", "-t", "tmpfs", "-o", "size=1M", "arena", arena);
            Shell.Run("mount", "--make-private", arena);
            string pre = Directory.CreateDirectory(Path.Combine(arena, "pre")).FullName;
            string top = Directory.CreateDirectory(Path.Combine(arena, "t")).FullName;
            PwshResult r;
            try
            {
                Shell.Run("mount", "--bind", dir, pre); // made first: listed first
                using (HangingFuse fuse = HangingFuse.Mount(top))
                {
                    Shell.Run("mount", "--move", pre, top); // the btrfs now covers the FUSE mount
                    try
                    {
                        using ActiveSwapfile swap = new(Path.Combine(top, "sv"));
                        Assert.Contains(swap.Path, File.ReadAllText("/proc/swaps"));
                        r = Pwsh.Run("New-BtrfsSwapfile -Path $s -Size 1MB -Force -Confirm:$false", ("s", swap.Path));
                    }
                    finally
                    {
                        Shell.Run("umount", top); // the btrfs on top; the FUSE mount goes with the daemon
                    }
                }
            }
            finally
            {
                Shell.Run("umount", "-l", arena);
            }

            Assert.Equal(new[] { "FileIsActiveSwapfile" }, r.ErrorIds);
        }
    }
}
