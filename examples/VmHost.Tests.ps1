#Requires -Modules Btrfs
<#
.SYNOPSIS
    Pester infrastructure test of a VM host's image storage (btrfs).

.DESCRIPTION
    Checks what keeps VM images fast and backups cheap:
    - every active image is NOCOW (rewritten in place, so it does not fragment from its own writes);
    - no active image has more than a given share of its data in extents below a threshold;
    - every backup made by reflink still shares its extents (it costs no space of its own).

.EXAMPLE
    Invoke-Pester ./VmHost.Tests.ps1 -Output Detailed

.EXAMPLE
    $container = New-PesterContainer -Path ./VmHost.Tests.ps1 -Data @{ ImageDirectory = '/srv/vm'; BackupDirectory = '/srv/vm-backups' }
    Invoke-Pester -Container $container
#>
param(
    # Where the active images are (*.img).
    [string] $ImageDirectory = '/var/lib/libvirt/images',

    # Where the reflink backups are (*.img).
    [string] $BackupDirectory = '/srv/backups',

    # Extents shorter than this count as fragmented: VM images want large ones.
    [long] $Threshold = 256MB,

    # The highest FragmentationScore (share of data in short fragments, 0-100) allowed.
    [int] $MaxFragmentationScore = 30
)

# A test that finds nothing to check must fail, not pass: -ErrorAction Stop turns a missing directory (a
# typo in the path) into a failure, and each test also asserts that it checked at least one image (an
# empty directory). The directories are taken literally (-LiteralPath, -Depth 0 -Include *.img): a name
# with [ or * is never read as a pattern that matches another directory.
Describe 'VM host storage' {
    It 'keeps every active image NOCOW' {
        $images = @(Test-NoCow -LiteralPath $ImageDirectory -Depth 0 -Include *.img -Detailed -ErrorAction Stop)
        $images | Should -Not -BeNullOrEmpty -Because "there must be images in $ImageDirectory to check"
        $cow = $images | Where-Object { -not $_.NoCowInEffect }
        $cow.Path | Should -BeNullOrEmpty -Because ($cow.ReasonText -join '; ')
    }

    It 'keeps every active image in large extents' {
        $measured = @(Measure-Fragmentation -LiteralPath $ImageDirectory -Depth 0 -Include *.img -Threshold $Threshold -ErrorAction Stop)
        $measured | Should -Not -BeNullOrEmpty -Because "there must be images in $ImageDirectory to check"
        $fragmented = $measured | Where-Object FragmentationScore -gt $MaxFragmentationScore
        # Extents a reflink backup shares are left as they are: defragment before the backup is made, or, once a
        # backup shares the small extents, with -IncludeShared (the image then takes its own space for them).
        $fragmented.Path | Should -BeNullOrEmpty -Because 'Invoke-BtrfsDefrag -ExtentThreshold 256MB fixes it (before the next reflink backup; extents a backup already shares only with -IncludeShared)'
    }

    It 'has backups that still share their extents' {
        $backups = @(Measure-Fragmentation -LiteralPath $BackupDirectory -Depth 0 -Include *.img -ErrorAction Stop)
        $backups | Should -Not -BeNullOrEmpty -Because "there must be backups in $BackupDirectory to check"
        $unshared = $backups | Where-Object SharedBytes -eq 0
        $unshared.Path | Should -BeNullOrEmpty -Because 'a reflink backup costs no space until the image changes'
    }
}
