" Vim syntax for specc model specs (the same roles as editors/vscode's TextMate grammar)
if exists("b:current_syntax")
  finish
endif

syn match   speccComment   "#.*$"
syn region  speccString    start=+"+ skip=+\\.+ end=+"\|$+
syn keyword speccDeclare   model task nextgroup=speccTypeName skipwhite
syn match   speccTypeName  "\h\w*" contained
syn keyword speccKeyword   input output
syn keyword speccBoolean   true false
syn match   speccNumber    "-\=\<\d\+\(\.\d*\)\=\([eE][+-]\=\d\+\)\=\>"
syn match   speccArrow     "->" nextgroup=speccOp skipwhite
syn match   speccOp        "\h\w*" contained
syn match   speccCall      "\h\w*\ze\s*("
syn match   speccArgument  "\h\w*\ze\s*=" contained containedin=speccArgs
syn region  speccArgs      matchgroup=speccParen start="(" end=")" transparent contains=ALLBUT,speccTypeName,speccOp

hi def link speccComment  Comment
hi def link speccString   String
hi def link speccDeclare  Keyword
hi def link speccTypeName Type
hi def link speccKeyword  Statement
hi def link speccBoolean  Boolean
hi def link speccNumber   Number
hi def link speccArrow    Operator
hi def link speccOp       Function
hi def link speccCall     Function
hi def link speccArgument Identifier

let b:current_syntax = "specc"
