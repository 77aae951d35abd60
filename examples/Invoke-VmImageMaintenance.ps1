#Requires -Modules Btrfs
<#
.SYNOPSIS
    Maintenance runbook for VM images on btrfs, xfs or ext4: measure, preview, defragment what needs
    it, and log what was done.

.DESCRIPTION
    1. Measures every *.img in ImageDirectory (Measure-Fragmentation).
    2. Picks the images with more than MaxFragmentationScore percent of their data in fragments
       shorter than Threshold.
    3. Previews their defragmentation (-WhatIf: what would be rewritten, what stays shared, the
       free space before and after).
    4. Defragments them (shared extents stay shared), unless the runbook itself runs with -WhatIf.
    5. Appends the result objects to the CSV log.

.EXAMPLE
    ./Invoke-VmImageMaintenance.ps1 -WhatIf

.EXAMPLE
    ./Invoke-VmImageMaintenance.ps1 -ImageDirectory /srv/vm -LogPath /var/log/vm-defrag.csv -Confirm:$false
#>
[CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'Medium')]
param(
    # Where the images are (*.img).
    [string] $ImageDirectory = '/var/lib/libvirt/images',

    # Extents shorter than this are rewritten: VM images want large ones.
    [long] $Threshold = 256MB,

    # Images with a FragmentationScore (0-100) above this are defragmented.
    [int] $MaxFragmentationScore = 30,

    # The CSV log; results are appended.
    [string] $LogPath = '/var/log/btrfs-vm-maintenance.csv'
)

$reports = @(Measure-Fragmentation -Path "$ImageDirectory/*.img" -Threshold $Threshold)
$candidates = @($reports | Where-Object FragmentationScore -gt $MaxFragmentationScore)
$PSCmdlet.WriteVerbose("$($candidates.Count) of $($reports.Count) image(s) above a score of $MaxFragmentationScore.")
if ($candidates.Count -eq 0) {
    return
}

# The preview, whatever happens next.
$candidates | Invoke-BtrfsDefrag -ExtentThreshold $Threshold -WhatIf

$results = foreach ($image in $candidates) {
    if ($PSCmdlet.ShouldProcess($image.Path, "Defragment (score $($image.FragmentationScore))")) {
        Invoke-BtrfsDefrag -LiteralPath $image.Path -ExtentThreshold $Threshold -Confirm:$false
    }
}

if ($results) {
    $results | Export-Csv -LiteralPath $LogPath -NoTypeInformation -Append
    $results
}
