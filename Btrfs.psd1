@{
    RootModule           = 'bin/Btrfs.dll'
    ModuleVersion        = '0.8.0'
    GUID                 = '6f1d3c2e-8b4a-4f7e-9a35-2c1b7d9e4a10'
    Author               = 'The Btrfs PowerShell module contributors'
    CompanyName          = 'The Btrfs PowerShell module contributors'
    Copyright            = '(c) 2026 The Btrfs PowerShell module contributors. MIT License.'
    Description          = 'File storage layout on Linux as objects, changed safely: extents, NOCOW, reflinks and dedupe, fragmentation and defragmentation that keeps reflinks shared, swapfiles, exact btrfs space accounting (btrfs, xfs, ext4).'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('Btrfs.Format.ps1xml')
    TypesToProcess       = @('Btrfs.Types.ps1xml')
    CmdletsToExport      = @('Get-BtrfsExtent', 'Test-NoCow', 'Set-NoCow', 'ConvertTo-NoCow', 'ConvertFrom-NoCow', 'Measure-Fragmentation', 'Invoke-BtrfsDefrag', 'New-BtrfsReflink', 'Invoke-BtrfsDedupe', 'Test-BtrfsSwapfile', 'New-BtrfsSwapfile', 'Measure-BtrfsUsage', 'Get-BtrfsExtentOwner', 'Show-ExtentMap', 'Get-BtrfsSubvolume', 'New-BtrfsSubvolume', 'New-BtrfsSnapshot', 'Remove-BtrfsSubvolume', 'Measure-BtrfsSubvolume', 'Find-BtrfsDuplicate')
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Linux', 'btrfs', 'xfs', 'ext4', 'reflink', 'nocow', 'defrag', 'dedupe', 'fiemap', 'filesystem', 'storage', 'PSEdition_Core')
            ProjectUri   = 'https://github.com/btrfs-pwsh/Btrfs'
            LicenseUri   = 'https://github.com/btrfs-pwsh/Btrfs/blob/main/LICENSE'
            ReleaseNotes = 'See CHANGELOG.md. 0.8.0: Show-ExtentMap, about_Btrfs, examples/, packaging target, filesystem names. 0.7.0: Invoke-BtrfsDefrag on xfs and ext4. 0.6.0: Get-BtrfsExtent -Exact, Measure-BtrfsUsage, Get-BtrfsExtentOwner. 0.5.0: Test-BtrfsSwapfile, New-BtrfsSwapfile. 0.4.0: New-BtrfsReflink, Invoke-BtrfsDedupe. 0.3.0: Measure-Fragmentation, Invoke-BtrfsDefrag (shared extents kept shared). 0.2.0: Test-NoCow, Set-NoCow, ConvertTo-NoCow, ConvertFrom-NoCow. 0.1.0: Get-BtrfsExtent (FIEMAP extent maps on btrfs, xfs and ext4).'
        }
    }
}
