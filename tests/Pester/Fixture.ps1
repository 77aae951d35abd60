# Shared by every *.Tests.ps1 here (dot-sourced in BeforeAll): the module from this checkout, and the
# loop filesystems of tests/Btrfs.TestFixture, the same fixture class the xunit tests use.
#   Invoke-Pester ./tests/Pester     (as root, after dotnet build Btrfs.sln)
$script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
Import-Module (Join-Path $RepoRoot 'Btrfs.psd1') -Force -ErrorAction Stop

$fixtureDll = Get-ChildItem (Join-Path $RepoRoot 'tests/Btrfs.TestFixture/bin/*/net*/Btrfs.TestFixture.dll') -ErrorAction SilentlyContinue |
    Sort-Object LastWriteTime | Select-Object -Last 1
if (-not $fixtureDll) { throw 'Build first: dotnet build Btrfs.sln (tests/Btrfs.TestFixture is missing)' }
if (-not ('Btrfs.Tests.Infrastructure.LoopFileSystems' -as [type])) { Add-Type -Path $fixtureDll.FullName }

# A filesystem this machine cannot make (not root, no loop devices): skipped with the reason, or a
# failure when CI=true, as in the xunit suite.
[Btrfs.Tests.Infrastructure.LoopFileSystems]::Unavailable = { param($reason) throw [System.InvalidOperationException]::new($reason) }
$script:Fixture = [Btrfs.Tests.Infrastructure.LoopFileSystems]::new()

function New-TestDirectory {
    param([ValidateSet('Btrfs', 'BtrfsZstd', 'Xfs', 'Ext4', 'Tmpfs')] [string] $FileSystem = 'Btrfs', [string] $Hint = 'pester')
    try {
        $script:Fixture.NewDirectory([Btrfs.Tests.Infrastructure.TestFs]$FileSystem, $Hint)
    }
    catch {
        if ($env:CI -eq 'true') { throw }
        Set-ItResult -Skipped -Because $_.Exception.InnerException.Message
    }
}

# A file of data written as several separate extents (the writes are synced one by one).
function New-TestFile {
    param([string] $Path, [int] $Chunks = 4, [int] $ChunkSize = 64KB, [int] $Seed = 1)
    $random = [System.Random]::new($Seed)
    $stream = [System.IO.FileStream]::new($Path, 'CreateNew', 'Write')
    try {
        $buffer = [byte[]]::new($ChunkSize)
        for ($i = 0; $i -lt $Chunks; $i++) {
            $random.NextBytes($buffer)
            $stream.Position = $i * 2 * $ChunkSize
            $stream.Write($buffer, 0, $buffer.Length)
            $stream.Flush($true)
        }
    }
    finally { $stream.Dispose() }
    Get-Item -LiteralPath $Path
}

# A file whose data lies in many small extents: written a chunk at a time, interleaved with a second
# file (both synced after every chunk), so no two of its chunks are next to each other on disk.
function New-FragmentedFile {
    param([string] $Path, [int] $Chunks = 64, [int] $ChunkSize = 16KB, [int] $Seed = 1)
    $random = [System.Random]::new($Seed)
    $other = "$Path.interleaved"
    $a = [System.IO.FileStream]::new($Path, 'CreateNew', 'Write')
    $b = [System.IO.FileStream]::new($other, 'CreateNew', 'Write')
    try {
        $buffer = [byte[]]::new($ChunkSize)
        for ($i = 0; $i -lt $Chunks; $i++) {
            foreach ($stream in $a, $b) {
                $random.NextBytes($buffer)
                $stream.Write($buffer, 0, $buffer.Length)
                $stream.Flush($true)
            }
        }
    }
    finally { $a.Dispose(); $b.Dispose() }
    Remove-Item -LiteralPath $other
    Get-Item -LiteralPath $Path
}
