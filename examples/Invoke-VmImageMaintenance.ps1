#Requires -Modules Btrfs
<#
.SYNOPSIS
    Maintenance runbook for VM images on btrfs, xfs or ext4: measure, preview, defragment what needs
    it, and log what was done.

.DESCRIPTION
    1. Measures every *.img in ImageDirectory (Measure-Fragmentation; subdirectories are not entered).
    2. Picks the images with more than MaxFragmentationScore percent of their data in fragments
       shorter than Threshold.
    3. Defragments them (shared extents stay shared), by the same Threshold: each report brings it
       to Invoke-BtrfsDefrag. Run with -WhatIf, the runbook changes nothing and the module previews each
       candidate once (what would be rewritten, what stays shared, the free space before and after);
       -Confirm asks once per image.
    4. Appends the result objects to the CSV log.

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

# The module never walks through a symbolic link; libvirt's image directory often is one, so it is
# resolved here, once, on purpose. A directory that does not exist stops the runbook.
$root = Get-Item -LiteralPath $ImageDirectory -ErrorAction Stop
if ($root.LinkTarget) {
    $root = $root.ResolveLinkTarget($true)
}

$reports = @(Measure-Fragmentation -LiteralPath $root.FullName -Depth 0 -Include *.img -Threshold $Threshold -ErrorAction Stop)
$candidates = @($reports | Where-Object FragmentationScore -gt $MaxFragmentationScore)
Write-Verbose "$($candidates.Count) of $($reports.Count) image(s) above a score of $MaxFragmentationScore."
if ($candidates.Count -eq 0) {
    return
}

# -WhatIf and -Confirm given to the runbook reach Invoke-BtrfsDefrag ($WhatIfPreference, $ConfirmPreference):
# one preview, or one question, per image, from the command that knows what it would cost.
$results = @($candidates | Invoke-BtrfsDefrag)

if ($results.Count -gt 0 -and -not $WhatIfPreference) {
    $results | Export-Csv -LiteralPath $LogPath -NoTypeInformation -Append
    $results
}
