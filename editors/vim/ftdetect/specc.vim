" .spec files are specc model specs (`set`, not `setfiletype`: Vim's own rules
" already call *.spec an RPM spec file)
autocmd BufRead,BufNewFile *.spec set filetype=specc
