module newsroom.example/stages/{{name}}

go 1.24
